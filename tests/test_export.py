"""The exported graphs: structure, checker, node contract, FP16 typing, dense export."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

from algm_export import ALGMConfig
from algm_export.export.contract import PLUGIN_NAMESPACE, PLUGIN_VERSION

CHECK_IN_FRESH_PROCESS = """
import sys, onnx
for path in sys.argv[1:]:
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
print("ok")
"""


def nodes(model, domain):
    return [node for node in model.graph.node if node.domain == domain]


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_graphs_pass_the_checker_without_our_schemas(pipeline_run, dense_graphs):
    code, _, folder = pipeline_run
    assert code == 0
    paths = [folder / "model.onnx", folder / "model.trt.onnx", folder / "model.fp16.onnx",
             dense_graphs.portable, dense_graphs.plugin]
    result = subprocess.run([sys.executable, "-c", CHECK_IN_FRESH_PROCESS, *map(str, paths)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_plugin_graph_follows_the_node_contract(pipeline_run):
    model = onnx.load(pipeline_run[2] / "model.trt.onnx")
    assert {o.domain: o.version for o in model.opset_import}[""] >= 18
    algm = nodes(model, "algm")
    assert [n.op_type for n in algm] == ["LocalMerge", "GlobalMerge", "Unmerge"]
    assert [n.name for n in algm] == ["algm/LocalMerge_0", "algm/GlobalMerge_1", "algm/Unmerge_2"]
    local, global_, unmerge = algm
    for node in algm:
        assert attributes(node)["plugin_version"] == PLUGIN_VERSION.encode()
        assert attributes(node)["plugin_namespace"] == PLUGIN_NAMESPACE.encode()
    assert attributes(local) == {**attributes(local), "grid_h": 32, "grid_w": 32, "window_h": 2, "window_w": 2}
    assert attributes(local)["threshold"] == pytest.approx(0.88)
    assert attributes(global_)["layer_number"] == 5
    assert len(local.output) == 4 and len(global_.output) == 4 and len(unmerge.output) == 1
    types = {v.name: v.type.tensor_type for v in list(model.graph.value_info) + list(model.graph.output)}
    size_tensor = types[local.output[3]]
    assert size_tensor.elem_type == onnx.TensorProto.INT32 and len(size_tensor.shape.dim) == 0  # TensorRT size tensor
    assert types[local.output[2]].elem_type == onnx.TensorProto.INT32
    assert {f.name for f in model.functions} >= {"LocalMerge", "GlobalMerge", "Unmerge"}
    assert sum(n.op_type == "LayerNormalization" for n in model.graph.node) == 31
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value
    assert [o.name for o in model.graph.output] == ["labels", "scores", "token_counts", "token_maps"]


def test_portable_graph_has_standard_ops_only(pipeline_run):
    model = onnx.load(pipeline_run[2] / "model.onnx")
    assert not nodes(model, "algm") and not model.functions
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    ops = {n.op_type for n in model.graph.node}
    assert {"TopK", "ScatterElements", "CumSum", "GatherElements", "LayerNormalization"} <= ops
    scatter = [n for n in model.graph.node if n.op_type == "ScatterElements" and attributes(n).get("reduction")]
    assert scatter and all(attributes(n)["reduction"] == b"add" for n in scatter)
    assert all(n.name.startswith(("algm/", "heads/labels/")) for n in model.graph.node if n.op_type == "TopK")
    # CumSum: in the merges and in the per-image packing maps (models/packing.py) between them
    assert any(n.name.startswith("algm/") for n in model.graph.node if n.op_type == "CumSum")


def test_fp16_graph_typing(pipeline_run):
    model = onnx.load(pipeline_run[2] / "model.fp16.onnx")
    graph_types = {v.name: v.type.tensor_type.elem_type for v in
                   list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    assert graph_types["images"] == graph_types["scores"] == onnx.TensorProto.FLOAT
    weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer]
    halves = sum(w.size for w in weights if w.dtype == np.float16)
    assert halves > 0.95 * sum(w.size for w in weights if w.dtype.kind == "f")
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax"):
            assert graph_types[node.input[0]] == onnx.TensorProto.FLOAT, node.name
        if node.op_type in ("LocalMerge", "GlobalMerge"):
            assert graph_types[node.input[0]] == onnx.TensorProto.FLOAT16
            assert graph_types[node.output[1]] == onnx.TensorProto.FLOAT  # sizes stay FP32
        if node.op_type == "MatMul":
            assert graph_types[node.output[0]] == onnx.TensorProto.FLOAT16, node.name


def test_dense_export(dense_graphs):
    for path in (dense_graphs.portable, dense_graphs.plugin, dense_graphs.fp16):
        model = onnx.load(path)
        assert not nodes(model, "algm")
        assert [o.name for o in model.graph.output] == ["labels", "scores"]  # the default deployment outputs


@pytest.mark.slow
def test_other_image_size_and_dense_graph_parity(tiny_model, dense_graphs, photos, tmp_path):
    from algm_export.export.onnx_export import export_graphs
    from algm_export.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from algm_export.runtime.torch_backend import TorchBackend

    graphs = export_graphs(tiny_model, tmp_path, (384, 384))
    backend = OnnxRuntimeBackend(graphs.portable)
    assert backend.info.image_size == (384, 384)
    images = backend.preprocess([photos["coffee"]])
    got, expected = backend.run(images), TorchBackend(tiny_model, (384, 384)).run(images)
    assert np.array_equal(got.token_counts, expected.token_counts) and expected.token_counts[0, 0] < 1 + 24 * 24
    assert np.abs(got.scores - expected.scores).max() <= 1e-3
    assert (got.labels() == expected.labels()).mean() >= 0.9999
    dense = OnnxRuntimeBackend(dense_graphs.portable)
    images = dense.preprocess([photos["rocket"]])
    tiny_model.set_algm(None)
    try:
        reference = TorchBackend(tiny_model, (512, 512)).run(images)
    finally:
        tiny_model.set_algm(ALGMConfig())
    assert np.abs(dense.run(images).scores - reference.scores).max() <= 1e-3
