"""SmoothQuant-style migration of activation outliers into the weights, folded into standard ops.

A LayerNorm whose output feeds only Linear MatMuls of the INT8 scope (QKV after LN1, FC1 after LN2) gets, per input
channel j, ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` (X: the LayerNorm's output on the calibration images, W:
the rows of every following weight): its weight and bias are divided by ``s`` and the following weights' input rows
multiplied by ``s``. ``(X / s) @ (s W) = X @ W``, so the FP32 graph computes the same up to rounding, while the
per-tensor INT8 scale of the MatMul's input is no longer set by a few outlier channels (their range moves into the
per-channel weight scales). Nothing upstream of a merge is touched (the LayerNorms are chosen by their MatMuls, all in
the scope), so ALGM's decisions are those of the FP32 graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from algm_export.artifacts import INPUT_NAME
from algm_export.errors import AlgmExportError
from algm_export.runtime.onnxruntime_backend import session_options

from .recipe import without_unused
from .scopes import SMOOTHQUANT_ALPHA

# s is clipped to this range: a channel that is (nearly) zero on every calibration image must not blow a weight row
# up by 1e8, nor shrink a LayerNorm weight to nothing (FP16 graph: its smallest normal number is 6e-5).
SCALE_LIMITS = (1e-2, 1e2)


@dataclass
class Smoothing:
    """The LayerNorms smoothed, their scales and the MatMuls that absorbed them."""

    alpha: float
    matmuls: dict[str, list[str]] = field(default_factory=dict)  # LayerNorm name -> the MatMuls it feeds
    scales: dict[str, np.ndarray] = field(default_factory=dict)  # LayerNorm name -> s [channels]

    def to_dict(self) -> dict:
        """The ``smoothing`` entry of report.json → ``int8``."""
        spread = [float(v) for s in self.scales.values() for v in (s.min(), s.max())]
        return {"alpha": self.alpha, "layer_norms": len(self.scales),
                "matmuls": sorted(m for names in self.matmuls.values() for m in names),
                "scale_range": [min(spread), max(spread)] if spread else None,
                "how": "s_j = max|X_j|^alpha / max|W_j|^(1-alpha) per input channel of the LayerNorm -> Linear pairs "
                       "of the scope (X on the calibration images); LayerNorm weight and bias / s, weight rows * s"}


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def smoothable(model: onnx.ModelProto, candidates: list[str]) -> dict[str, list[str]]:
    """LayerNorms whose output is read only by MatMuls of ``candidates`` (with constant weights, not a graph output):
    LayerNorm name -> those MatMuls."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, []).append(node)
    outputs, weights, allowed = {o.name for o in model.graph.output}, _initializers(model), set(candidates)
    pairs = {}
    for node in model.graph.node:
        if node.op_type != "LayerNormalization" or node.input[1] not in weights or node.output[0] in outputs:
            continue
        if len(node.input) > 2 and node.input[2] and node.input[2] not in weights:
            continue
        readers = consumers.get(node.output[0], [])
        if readers and all(r.op_type == "MatMul" and r.name in allowed and r.input[0] == node.output[0]
                           and r.input[1] in weights for r in readers):
            pairs[node.name] = [r.name for r in readers]
    return pairs


def channel_amax(model: onnx.ModelProto, layer_norms: list[str], batches) -> dict[str, np.ndarray]:
    """max |x| per channel (last axis) of each LayerNorm's output over ``batches`` (preprocessed images), in ONNX
    Runtime with those outputs exposed."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    tensors = {node.name: node.output[0] for node in probe.graph.node if node.name in set(layer_norms)}
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors.values())
    session = ort.InferenceSession(probe.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])
    amax: dict[str, np.ndarray] = {}
    for batch in batches:
        for name, value in zip(tensors, session.run(list(tensors.values()), {INPUT_NAME: batch})):
            channels = np.abs(value.astype(np.float32)).reshape(-1, value.shape[-1]).max(axis=0)
            amax[name] = channels if name not in amax else np.maximum(amax[name], channels)
    return amax


def smoothing_scales(activation_amax: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)``, ``W_j`` row j of every weight ``[K, N]``; clipped to
    :data:`SCALE_LIMITS`, 1 where a channel or its weights are all zero."""
    weight_amax = np.max([np.abs(w.astype(np.float32)).max(axis=1) for w in weights], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = activation_amax.astype(np.float64) ** alpha / weight_amax.astype(np.float64) ** (1 - alpha)
    scales = np.where(np.isfinite(scales) & (scales > 0), scales, 1.0)
    return np.clip(scales, *SCALE_LIMITS).astype(np.float32)


def measure(model: onnx.ModelProto, candidates: list[str], batches, alpha: float = SMOOTHQUANT_ALPHA) -> Smoothing:
    """The smoothing of ``model`` (FP32) for ``candidates``, from the LayerNorm outputs on ``batches``."""
    pairs = smoothable(model, candidates)
    smoothing = Smoothing(alpha, pairs)
    if not pairs:
        return smoothing
    amax = channel_amax(model, list(pairs), batches)
    weights = _initializers(model)
    weight_of = {node.name: node.input[1] for node in model.graph.node if node.op_type == "MatMul"}
    for layer_norm, matmuls in pairs.items():
        smoothing.scales[layer_norm] = smoothing_scales(
            amax[layer_norm], [numpy_helper.to_array(weights[weight_of[m]]) for m in matmuls], alpha)
    return smoothing


def _replace(model: onnx.ModelProto, node: onnx.NodeProto, index: int, value: np.ndarray) -> None:
    """Point input ``index`` of ``node`` at a new initializer of its own holding ``value`` (in the old one's dtype;
    the exporter shares identical tensors between nodes, e.g. LayerNorm weights that are all ones)."""
    old = _initializers(model)[node.input[index]]
    name = f"{node.name}/input{index}_smoothed"
    model.graph.initializer.append(numpy_helper.from_array(value.astype(numpy_helper.to_array(old).dtype), name))
    node.input[index] = name


def apply(model: onnx.ModelProto, smoothing: Smoothing) -> onnx.ModelProto:
    """A copy of ``model`` (FP32 or FP16: the node names of the FP32 graph) with ``smoothing`` folded in: each
    LayerNorm's weight and bias divided by its ``s``, each following weight's input rows multiplied by it."""
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(model)
    nodes = {node.name: node for node in smoothed.graph.node}
    missing = [n for ln, names in smoothing.matmuls.items() if ln in smoothing.scales for n in (ln, *names)
               if n not in nodes]
    if missing:
        raise AlgmExportError(f"smoothing: {len(missing)} nodes of the FP32 graph are missing here (e.g. {missing[0]})")
    for layer_norm, scales in smoothing.scales.items():
        node = nodes[layer_norm]
        values = _initializers(smoothed)
        for index in range(1, min(len(node.input), 3)):
            if node.input[index]:
                _replace(smoothed, node, index, numpy_helper.to_array(values[node.input[index]]) / scales)
        for name in smoothing.matmuls[layer_norm]:
            weight = numpy_helper.to_array(values[nodes[name].input[1]])
            _replace(smoothed, nodes[name], 1, weight * scales[:, None])
    return without_unused(smoothed)
