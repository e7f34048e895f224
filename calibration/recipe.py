"""The INT8 recipe: which MatMuls get Q/DQ pairs, and the two Q/DQ graphs.

Quantized: the Linear layers' MatMuls only (a MatMul whose second input is a constant weight), with
symmetric per-channel INT8 weights (per output column), per-tensor activations from max calibration,
and no quantization of their outputs. Never quantized: the merge subgraph (nodes named ``algm/...``),
LayerNorm, Softmax, GELU and the attention MatMuls (two activations; quantizing them adds requantization
around Softmax that is slower on CPU, and quantizing everything drops label agreement to 0.2-0.7).

Scopes: ``after-merge`` quantizes only Linear layers that no merge decision depends on (not upstream of
any merge node; in a dense graph that is every Linear layer), so the token maps stay those of the FP32
graph; ``all-linear`` quantizes every Linear layer, faster but merge decisions can change.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import TensorsData, save_tensors_data

from algm_export.errors import AlgmExportError
from algm_export.export.contract import GLOBAL_MERGE, LOCAL_MERGE
from algm_export.export.graph_edits import NODE_PREFIX

from .scopes import AFTER_MERGE, check_scope

MERGE_PREFIXES = tuple(f"{NODE_PREFIX}{op}_" for op in (LOCAL_MERGE, GLOBAL_MERGE))
QDQ_OPSET = 19  # QuantizeLinear/DequantizeLinear on FP16 tensors (FP16 scales) need opset 19
INT8_MAX = 127


def _constants(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}


def merge_ancestors(graph: onnx.GraphProto) -> set[str]:
    """Names of the nodes upstream of a merge node (merge decisions depend on them)."""
    producer = {output: node for node in graph.node for output in node.output}
    pending = [node for node in graph.node if node.name.startswith(MERGE_PREFIXES)]
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        for tensor in node.input:
            parent = producer.get(tensor)
            if parent is not None and parent.name not in seen:
                seen.add(parent.name)
                pending.append(parent)
    return seen


def linear_matmuls(model: onnx.ModelProto, scope: str) -> list[str]:
    """Names of the MatMuls the recipe quantizes in ``model`` (graph order)."""
    graph = model.graph
    weights, upstream = _constants(graph), merge_ancestors(graph) if check_scope(scope) == AFTER_MERGE else set()
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in weights
            and not node.name.startswith(NODE_PREFIX) and node.name not in upstream]


def quantize_onnxruntime(graph: Path, nodes: list[str], ranges: TensorsData, activation: QuantType) -> onnx.ModelProto:
    """Q/DQ on the FP32 graph with ONNX Runtime's quantize_static and the calibrated ``ranges``.

    ``DedicatedQDQPair`` gives every quantized MatMul its own Q/DQ pair; where ONNX Runtime still routes a
    shared tensor through Q/DQ into another consumer (a merge node, LayerNorm: ``nodes_to_exclude`` does not
    prevent it, nor does the option for graph inputs), :func:`restore_float_inputs` gives it the float back.
    """
    with tempfile.TemporaryDirectory(prefix="algm-int8-") as folder:
        cache, output = Path(folder) / "ranges.json", Path(folder) / "model.int8.onnx"
        save_tensors_data(ranges, cache)
        with quiet_root_logger():  # "consider pre-processing" advice on every call (our graphs are optimized)
            quantize_static(
                str(graph), str(output), None, quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                per_channel=True, activation_type=activation, weight_type=QuantType.QInt8, nodes_to_quantize=nodes,
                calibrate_method=ranges.calibration_method, calibration_cache_path=str(cache),
                extra_options={"DedicatedQDQPair": True, "WeightSymmetric": True,
                               "ActivationSymmetric": activation == QuantType.QInt8,
                               "OpTypesToExcludeOutputQuantization": ["MatMul"]},
            )
        return restore_float_inputs(onnx.load(output), set(nodes))


@contextlib.contextmanager
def quiet_root_logger():
    """Hide warnings logged through the root logger (ONNX Runtime's quantization tooling uses it)."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def restore_float_inputs(model: onnx.ModelProto, quantized: set[str]) -> onnx.ModelProto:
    """Nodes outside ``quantized`` that read a dequantized activation read its float source instead."""
    producer = {output: node for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        if node.name in quantized:
            continue
        for index, tensor in enumerate(node.input):
            dequantize = producer.get(tensor)
            if dequantize is None or dequantize.op_type != "DequantizeLinear":
                continue
            quantize = producer.get(dequantize.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                node.input[index] = quantize.input[0]
    return model


def keep_quantized(qdq: onnx.ModelProto, fp32: onnx.ModelProto, kept: set[str]) -> onnx.ModelProto:
    """A copy of the Q/DQ graph ``qdq`` in which only the MatMuls ``kept`` stay quantized: every other quantized
    MatMul reads its float activation and the FP32 graph's float weight again, and the Q/DQ nodes nobody reads
    any more are removed. The ranges and INT8 weights of ``kept`` are exactly those of ``qdq``, so a graph the
    mixed-precision search evaluated is the graph that is written."""
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    float_weights = {node.name: node.input[1] for node in fp32.graph.node if node.op_type == "MatMul"}
    initializers = {t.name: t for t in fp32.graph.initializer}
    present = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "MatMul" or node.name in kept or node.name not in float_weights:
            continue
        dequantize = producer.get(node.input[0])
        if dequantize is not None and dequantize.op_type == "DequantizeLinear":
            quantize = producer.get(dequantize.input[0])
            if quantize is not None and quantize.op_type == "QuantizeLinear":
                node.input[0] = quantize.input[0]
        weight = producer.get(node.input[1])
        if weight is not None and weight.op_type == "DequantizeLinear":
            name = float_weights[node.name]
            node.input[1] = name
            if name not in present:
                graph.initializer.append(initializers[name])
                present.add(name)
    return without_unused(model)


def without_unused(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (edited in place) without the nodes and initializers that no node or graph output reads."""
    graph = model.graph
    while True:
        read = _read_tensors(graph.node) | {o.name for o in graph.output}
        unused = [node for node in graph.node if not any(output in read for output in node.output)]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    read = _read_tensors(graph.node) | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def _read_tensors(nodes) -> set[str]:
    """Tensors the ``nodes`` read, including those their subgraphs (If, Loop, Scan) read from outer scopes."""
    read = set()
    for node in nodes:
        read.update(node.input)
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs] if attribute.type in (
                    onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) else []:
                read |= _read_tensors(subgraph.node)
    return read


def activation_amax(fp32_model: onnx.ModelProto, ranges: TensorsData) -> dict[str, float]:
    """max |x| of each MatMul's first input in the FP32 graph, by node name."""
    result = {}
    for node in fp32_model.graph.node:
        if node.op_type == "MatMul" and node.input[0] in ranges:
            low, high = ranges[node.input[0]].range_value
            result[node.name] = float(np.abs(np.concatenate([np.ravel(low), np.ravel(high)])).max())
    return result


def quantize_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-column INT8 of a MatMul weight ``[K, N]``: (int8 values, float32 scales [N])."""
    values = weight.astype(np.float32)
    scale = np.abs(values).max(axis=0) / INT8_MAX
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(values / scale), -INT8_MAX, INT8_MAX).astype(np.int8), scale


def quantize_tensorrt(fp16_model: onnx.ModelProto, nodes: list[str], amax: dict[str, float]) -> onnx.ModelProto:
    """Q/DQ on the FP16 graph for strongly typed TensorRT: symmetric INT8 (zero points 0) with FP16 scales,
    the algm plugin nodes untouched; opset 19 (FP16 Q/DQ)."""
    graph = gs.import_onnx(fp16_model)
    by_name = {node.name: node for node in graph.nodes}
    for name in nodes:
        node = by_name.get(name)
        if node is None or name not in amax:
            raise AlgmExportError(f"INT8: MatMul {name} of the FP32 graph is missing in the FP16 graph or its ranges")
        activation, weight = node.inputs
        dtype = activation.dtype
        scale = gs.Constant(f"{name}/input_scale", np.array(max(amax[name], 1e-8) / INT8_MAX, dtype))
        zero = gs.Constant(f"{name}/input_zero_point", np.array(0, np.int8))
        quantized = graph.layer(op="QuantizeLinear", name=f"{name}/input_quantize", inputs=[activation, scale, zero],
                                outputs=[gs.Variable(f"{name}/input_int8", np.int8, activation.shape)])[0]
        node.inputs[0] = graph.layer(op="DequantizeLinear", name=f"{name}/input_dequantize",
                                     inputs=[quantized, scale, zero],
                                     outputs=[gs.Variable(f"{name}/input_qdq", dtype, activation.shape)])[0]
        values, scales = quantize_weight(weight.values)
        node.inputs[1] = graph.layer(
            op="DequantizeLinear", name=f"{name}/weight_dequantize", attrs={"axis": 1},
            inputs=[gs.Constant(f"{name}/weight_int8", values),
                    gs.Constant(f"{name}/weight_scale", scales.astype(dtype)),
                    gs.Constant(f"{name}/weight_zero_point", np.zeros(len(scales), np.int8))],
            outputs=[gs.Variable(f"{name}/weight_qdq", dtype, weight.shape)])[0]
    model = gs.export_onnx(graph.cleanup().toposort())
    # The ops of the graph and of the algm function bodies mean the same at opset 19 as at 18; the
    # checker requires the functions to import the model's version.
    for imports in [model.opset_import, *(function.opset_import for function in model.functions)]:
        for entry in imports:
            if entry.domain in ("", "ai.onnx"):
                entry.version = max(entry.version, QDQ_OPSET)
    return model


def dequantized_inputs(model: onnx.ModelProto) -> dict[str, list[int]]:
    """For each node reading a DequantizeLinear output: the indices of those inputs."""
    from_dq = {o for node in model.graph.node if node.op_type == "DequantizeLinear" for o in node.output}
    result = {}
    for node in model.graph.node:
        indices = [i for i, tensor in enumerate(node.input) if tensor in from_dq]
        if indices and node.op_type != "QuantizeLinear":
            result[node.name] = indices
    return result


def check_merge_inputs_float(model: onnx.ModelProto, what: str) -> None:
    """AlgmExportError when a node of the merge subgraph (``algm/...``) reads a dequantized tensor."""
    offenders = sorted(name for name in dequantized_inputs(model) if name.startswith(NODE_PREFIX))
    if offenders:
        raise AlgmExportError(f"{what}: merge nodes read quantized tensors ({', '.join(offenders[:3])}); "
                              "the INT8 recipe must keep them float")
