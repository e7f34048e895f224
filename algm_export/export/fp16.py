"""FP16 graph: FP16 activations and weights, with numerically fragile ops kept in FP32.

What TensorRT 11 builds FP16 engines from (it has no FP16 builder flag; networks are strongly typed)
and what TensorRT 10 can build strongly typed. Kept in FP32: LayerNormalization, Softmax, every
reduction, Pow/Sqrt, TopK/CumSum/ArgMax, the graph inputs and outputs, and the ``sizes`` of the merge
nodes. The algm nodes take FP16 tokens and do their similarity and threshold maths in FP32 inside
(their function bodies cast; the TensorRT plugins likewise). Casts are inserted where precisions meet.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..ops_contract import CONTRACT, OP_NAMES, SIZES_OUTPUT, output_index

FP32_OPS = frozenset({
    "LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceL1", "ReduceL2",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp",
    "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "TopK", "CumSum", "ArgMax", "ArgMin", "Range",
})
# Inputs that follow the node's precision; other float inputs (Resize's roi/scales, merge sizes) stay FP32.
DATA_INPUTS = {"Resize": (0,), **{op: (0,) for op in OP_NAMES}}  # the algm ops' first input: tokens/values
FP32_OUTPUTS = {op: (output_index(op, SIZES_OUTPUT),) for op in OP_NAMES
                if SIZES_OUTPUT in CONTRACT["ops"][op]["outputs"]}

FP16, FP32 = np.float16, np.float32


def _is_float(tensor: gs.Tensor) -> bool:
    return tensor.dtype in (FP32, FP16, np.dtype(FP32), np.dtype(FP16))


def _data_inputs(node: gs.Node) -> tuple[int, ...]:
    return DATA_INPUTS.get(node.op, tuple(range(len(node.inputs))))


def node_precision(node: gs.Node):
    """FP32 or FP16 for a node that computes on floats, None otherwise."""
    floats = [node.inputs[i] for i in _data_inputs(node) if i < len(node.inputs)] + list(node.outputs)
    if not any(_is_float(t) for t in floats):
        return None
    if node.op in FP32_OPS:
        return FP32
    return FP16


def required_type(node: gs.Node, index: int, precision):
    """The float type input ``index`` of ``node`` must have."""
    return precision if index in _data_inputs(node) else FP32


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The FP16 version of ``model`` (float32 inputs and outputs kept)."""
    graph = gs.import_onnx(model)
    precision = {id(node): node_precision(node) for node in graph.nodes}
    _type_outputs(graph, precision)
    _convert_constants(graph, precision)
    _insert_casts(graph, precision)
    _restore_fp32_outputs(graph)
    return gs.export_onnx(graph.cleanup().toposort())


def _type_outputs(graph: gs.Graph, precision: dict) -> None:
    for node in graph.nodes:
        wanted = precision[id(node)]
        for index, tensor in enumerate(node.outputs):
            if wanted is None or not _is_float(tensor):
                continue
            tensor.dtype = FP32 if index in FP32_OUTPUTS.get(node.op, ()) else wanted
        if node.op == "Cast" and wanted is FP16 and node.attrs.get("to") == onnx.TensorProto.FLOAT:
            node.attrs["to"] = onnx.TensorProto.FLOAT16


def _convert_constants(graph: gs.Graph, precision: dict) -> None:
    """Weights read only by FP16 inputs become FP16; shared ones get an FP16 copy."""
    for tensor in list(graph.tensors().values()):
        if not isinstance(tensor, gs.Constant) or tensor.dtype != FP32:
            continue
        slots = [(node, i) for node in tensor.outputs for i, t in enumerate(node.inputs) if t is tensor]
        wants_fp16 = [(node, i) for node, i in slots if required_type(node, i, precision[id(node)]) is FP16]
        if not wants_fp16:
            continue
        if len(wants_fp16) == len(slots):
            tensor.values = tensor.values.astype(FP16)
            continue
        copy = gs.Constant(f"{tensor.name}_fp16", tensor.values.astype(FP16))
        for node, index in wants_fp16:
            node.inputs[index] = copy


def _insert_casts(graph: gs.Graph, precision: dict) -> None:
    casts: dict[tuple[str, type], gs.Variable] = {}
    for node in list(graph.nodes):
        node_kind = precision[id(node)]
        for index, tensor in enumerate(node.inputs):
            if not isinstance(tensor, gs.Variable) or not _is_float(tensor):
                continue
            wanted = required_type(node, index, node_kind) if node_kind is not None else tensor.dtype
            if np.dtype(tensor.dtype) == np.dtype(wanted):
                continue
            key = (tensor.name, wanted)
            if key not in casts:
                suffix = "fp16" if wanted is FP16 else "fp32"
                casts[key] = graph.layer(
                    op="Cast", name=f"{tensor.name}/to_{suffix}", inputs=[tensor],
                    outputs=[gs.Variable(f"{tensor.name}_{suffix}", wanted, tensor.shape)],
                    attrs={"to": onnx.TensorProto.FLOAT16 if wanted is FP16 else onnx.TensorProto.FLOAT},
                )[0]
            node.inputs[index] = casts[key]


def _restore_fp32_outputs(graph: gs.Graph) -> None:
    for position, output in enumerate(graph.outputs):
        if output.dtype != FP16:
            continue
        name = output.name
        output.name = f"{name}_fp16"
        graph.outputs[position] = graph.layer(
            op="Cast", name=f"{name}/to_fp32", inputs=[output],
            outputs=[gs.Variable(name, FP32, output.shape)], attrs={"to": onnx.TensorProto.FLOAT},
        )[0]
