"""One op contract (algm_export/ops_contract.json) for the PyTorch ops, the ONNX nodes and the C++ creators."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import onnx
import pytest

from algm_export.export.contract import PLUGIN_ATTRIBUTES, SCHEMAS
from algm_export.merging.assignment import NORM_EPS
from algm_export.ops_contract import CONTRACT, DOMAIN, NORM_EPSILON, PLUGIN_NAMESPACE, PLUGIN_VERSION, attributes

ROOT = Path(__file__).resolve().parents[1]
HOST_TEST = Path(os.environ.get("ALGM_PLUGIN_HOST_TEST", ROOT / "build/plugins/trt/algm_plugin_host_test"))
PLUGINS = HOST_TEST.parent / "libalgm_plugins.so"
FIELD_TYPES = {"int": "INT32", "float": "FLOAT32"}  # what the ONNX parser turns INT/FLOAT attributes into


def test_schemas_follow_the_contract():
    assert NORM_EPS == NORM_EPSILON == 1e-12
    assert {schema.name for schema in SCHEMAS} == set(CONTRACT["ops"])
    for schema in SCHEMAS:
        assert schema.domain == DOMAIN
        kinds = {name: attribute.type.name.lower() for name, attribute in schema.attributes.items()}
        assert {k: v for k, v in kinds.items() if k not in PLUGIN_ATTRIBUTES} == attributes(schema.name)
        assert [p.name for p in schema.outputs] == CONTRACT["ops"][schema.name]["outputs"]
        assert [p.name for p in schema.inputs] == CONTRACT["ops"][schema.name]["inputs"]


def test_exported_nodes_carry_the_contract(pipeline_run):
    model = onnx.load(pipeline_run[2] / "model.trt.onnx", load_external_data=False)
    nodes = [n for n in model.graph.node if n.domain == DOMAIN]
    assert sorted({n.op_type for n in nodes}) == sorted(CONTRACT["ops"])
    for node in nodes:
        given = {a.name: a for a in node.attribute}
        assert set(given) == set(attributes(node.op_type)) | set(PLUGIN_ATTRIBUTES)
        assert given["plugin_version"].s.decode() == PLUGIN_VERSION
        assert given["plugin_namespace"].s.decode() == PLUGIN_NAMESPACE
    # The size tensors are INT32, what the plugins emit by default (size_dtype absent).
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.output)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    sizes = [n.output[3] for n in nodes if n.op_type != "Unmerge"]
    assert sizes and all(types[name] == onnx.TensorProto.INT32 for name in sizes)


def test_cpp_creators_match_the_contract():
    if not HOST_TEST.is_file() or not PLUGINS.is_file():
        pytest.skip(f"the TensorRT plugin layer is not built ({HOST_TEST} missing; configure plugins/ with "
                    "-DTensorRT_ROOT=... and nvcc)")
    printed = subprocess.run([str(HOST_TEST), str(PLUGINS), "--print-fields"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    fields: dict[str, dict[str, str]] = {op: {} for op in CONTRACT["ops"]}
    for line in printed:
        op, rest = line.split(" ", 1)
        if rest.startswith("namespace="):
            assert rest == f"namespace={PLUGIN_NAMESPACE} version={PLUGIN_VERSION}"
        else:
            name, kind = rest.split()
            fields[op][name] = kind
    for op in CONTRACT["ops"]:
        expected = {name: FIELD_TYPES[kind] for name, kind in attributes(op).items()}
        if "num_tokens" in CONTRACT["ops"][op]["outputs"]:
            expected[CONTRACT["size_dtype_attribute"]] = "INT32"  # optional: absent means INT32
        assert fields[op] == expected, op
