"""The INT8 verdict's weight check: every INT8 MatMul's dequantized weight reproduces the float graph's weight.

A wrong scale on ONE MatMul changes the sample's logits 2-3x more than INT8 rounding does, but INT8 rounding itself
differs 6x between models (ViT-Tiny sample vs a random-head ViT-S/16: docs/int8.md), so no bound on the outputs
separates the two on every model. The weights can be checked exactly instead: symmetric round-to-nearest INT8 puts
every dequantized weight within half a step (its column's scale / 2) of the float weight, on any CPU. The float weight
is the one of the graph the INT8 graph was made from (``model.onnx`` for ``model.int8.onnx``, ``model.fp16.onnx`` for
``model.fp16.int8.onnx``), times the SmoothQuant factor of its input channel where a LayerNorm was smoothed (read
back from the two graphs' LayerNorm weights: ``s = gamma_float / gamma_int8``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from algm_export.artifacts import FP16_GRAPH, FP16_INT8_GRAPH, INT8_GRAPH, PORTABLE_GRAPH

FLOAT_GRAPH_OF = {INT8_GRAPH: PORTABLE_GRAPH, FP16_INT8_GRAPH: FP16_GRAPH}
# Allowed distance from the float weight, in INT8 steps of the column: 0.5 (round to nearest) plus, in the FP16 graph,
# the rounding of the scale and of the smoothed weight to FP16 (2^-11 relative each, x 127 steps at the column's
# largest weight: 0.062 steps each) -> 0.65. A wrong scale by a factor f moves the largest weight of the column
# by |1 - f| x 127 steps (63 steps for 2x or 0.5x; a 1 % scale error gives 1.3 steps).
STEP_TOLERANCE = 0.65


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _source_layer_norm(producer: dict, tensor: str) -> onnx.NodeProto | None:
    """The LayerNorm a MatMul's activation comes from through Q/DQ and Cast nodes, if any."""
    node = producer.get(tensor)
    while node is not None and node.op_type in ("QuantizeLinear", "DequantizeLinear", "Cast"):
        node = producer.get(node.input[0])
    return node if node is not None and node.op_type == "LayerNormalization" else None


def weight_steps(int8: onnx.ModelProto, reference: onnx.ModelProto) -> dict[str, float]:
    """For each MatMul of ``int8`` with an INT8 weight: the largest distance, in INT8 steps of its column, between
    its dequantized weight and the same-named MatMul's weight in ``reference`` (times the smoothing factors)."""
    values, reference_values = _constants(int8), _constants(reference)
    producer = {o: n for n in int8.graph.node for o in n.output}
    reference_nodes = {n.name: n for n in reference.graph.node}
    steps = {}
    for node in int8.graph.node:
        dequantize = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        if dequantize is None or dequantize.op_type != "DequantizeLinear" or dequantize.input[0] not in values:
            continue
        quantized = values[dequantize.input[0]].astype(np.float64)
        scale = values[dequantize.input[1]].astype(np.float64)
        zero = values[dequantize.input[2]].astype(np.float64) if len(dequantize.input) > 2 else np.zeros_like(scale)
        if scale.ndim == 1:  # per output column (axis 1 of [K, N])
            scale, zero = scale[None, :], zero[None, :]
        other = reference_nodes.get(node.name)
        if other is None or other.input[1] not in reference_values:
            steps[node.name] = np.inf  # nothing to compare with: not a MatMul of the float graph
            continue
        expected = reference_values[other.input[1]].astype(np.float64)
        layer_norm = _source_layer_norm(producer, node.input[0])
        if layer_norm is not None and layer_norm.name in reference_nodes:
            ours = values[layer_norm.input[1]].astype(np.float64)
            theirs = reference_values[reference_nodes[layer_norm.name].input[1]].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                factors = np.where(ours != 0, theirs / ours, 1.0)
            expected = expected * factors[:, None]
        if expected.shape != quantized.shape:
            steps[node.name] = np.inf
            continue
        steps[node.name] = float((np.abs((quantized - zero) * scale - expected) / scale).max())
    return steps


def check_int8_weights(graph: Path) -> dict:
    """The weight check of an INT8 graph file against the float graph beside it: ``checked`` (False when there is
    none, e.g. a renamed copy), the worst MatMul and its distance in steps, and the problems (verdict failures)."""
    reference = graph.with_name(FLOAT_GRAPH_OF[graph.name]) if graph.name in FLOAT_GRAPH_OF else None
    if reference is None or not reference.is_file():
        return {"checked": False, "reason": f"no {FLOAT_GRAPH_OF.get(graph.name, 'float graph')} beside {graph.name}",
                "problems": []}
    steps = weight_steps(onnx.load(graph), onnx.load(reference))
    worst = max(steps, key=steps.get, default=None)
    wrong = sorted((name for name, value in steps.items() if not value <= STEP_TOLERANCE), key=lambda n: -steps[n])
    problems = [(f"INT8 weights of {len(wrong)} MatMul(s) do not reproduce {reference.name}'s: {wrong[0]} is off by "
                 f"{steps[wrong[0]]:.3g} INT8 steps (> {STEP_TOLERANCE}; a wrong scale?)")] if wrong else []
    return {"checked": True, "against": reference.name, "matmuls": len(steps), "tolerance_steps": STEP_TOLERANCE,
            "worst": worst, "worst_steps": steps.get(worst), "problems": problems}
