"""Standard-op definitions of the ``algm`` nodes, as ONNX model-local functions (written in onnxscript).

Attached to the plugin graph, they let ONNX Runtime, polygraphy and the ONNX checker run a graph whose
merges are single ``algm`` nodes; inlined, they give the portable graph. They restate
``algm_export.merging.assignment`` op for op: stable descending ranks through a full-length TopK (ties:
lower index first), cosine similarity of ``x / max(||x||, 1e-12)`` in float32, a size-weighted
scatter-mean through ScatterElements(reduction="add"). Only the output token count is data-dependent.
"""

from __future__ import annotations

import onnx
from onnxscript import FLOAT, INT32, INT64, script
from onnxscript import opset18 as op
from onnxscript.values import Opset

from ..ops_contract import NORM_EPSILON
from .contract import DOMAIN, DOMAIN_VERSION

algm = Opset(DOMAIN, DOMAIN_VERSION)
algm_impl = Opset(DOMAIN + ".impl", 1)



@script(algm_impl, default_opset=op)
def UnitRows(x):
    """Rows of x in float32 scaled to unit L2 norm (zero rows stay zero)."""
    values = op.Cast(x, to=FLOAT.dtype)
    return values / op.Max(op.ReduceL2(values, [-1], keepdims=1), op.Constant(value_float=NORM_EPSILON))


@script(algm_impl, default_opset=op)
def DescendingRanks(values):
    """Rank of each entry along axis 1 in a stable descending order (0 = largest)."""
    count = op.Shape(values, start=1, end=2)
    _, order = op.TopK(values, count, axis=1, largest=1, sorted=1)
    positions = op.Expand(op.Range(0, op.Squeeze(count), 1), op.Shape(order))
    return op.ScatterElements(op.Expand(0, op.Shape(order)), order, positions, axis=1)


@script(algm_impl, default_opset=op)
def KeptBefore(merged):
    """For each entry, how many unmerged entries precede it along axis 1."""
    return op.CumSum(op.Cast(op.Not(merged), to=INT64.dtype), op.Constant(value_int=1)) - 1


@script(algm_impl, default_opset=op)
def ScatterMean(x, sizes, slots, n_out):
    """Size-weighted mean of the rows of x [B,T,C] grouped by slots [B,T] into n_out ([1]) rows."""
    batch = op.Shape(x, start=0, end=1)
    weighted = op.Cast(x, to=FLOAT.dtype) * op.Unsqueeze(sizes, [-1])
    index = op.Expand(op.Unsqueeze(slots, [-1]), op.Shape(x))
    zeros = op.Expand(op.Constant(value_float=0.0), op.Concat(batch, n_out, op.Shape(x, start=2, end=3), axis=0))
    sums = op.ScatterElements(zeros, index, weighted, axis=1, reduction="add")
    no_sizes = op.Expand(op.Constant(value_float=0.0), op.Concat(batch, n_out, axis=0))
    new_sizes = op.ScatterElements(no_sizes, slots, sizes, axis=1, reduction="add")
    merged = op.CastLike(sums / op.Unsqueeze(new_sizes, [-1]), x)
    return merged, new_sizes


@script(algm, default_opset=op)
def LocalMerge(tokens, grid_h: int, grid_w: int, window_h: int, window_w: int, threshold: float,
               plugin_version: str, plugin_namespace: str):
    """CLAP (see algm_export.merging.assignment.local_assignment)."""
    gh = op.Unsqueeze(op.Constant(value_int=grid_h), [0])
    gw = op.Unsqueeze(op.Constant(value_int=grid_w), [0])
    wh = op.Unsqueeze(op.Constant(value_int=window_h), [0])
    ww = op.Unsqueeze(op.Constant(value_int=window_w), [0])
    batch = op.Shape(tokens, start=0, end=1)
    channels = op.Shape(tokens, start=2, end=3)
    k = wh * ww
    units = UnitRows(op.Slice(tokens, [1], [9223372036854775807], [1]))
    blocks = op.Reshape(units, op.Concat(batch, gh / wh, wh, gw / ww, ww, channels, axis=0))
    windows = op.Reshape(op.Transpose(blocks, perm=[0, 1, 3, 2, 4, 5]), op.Concat(batch, [-1], k, channels, axis=0))
    gram = op.MatMul(windows, op.Transpose(windows, perm=[0, 1, 3, 2]))
    off_diagonal = op.Constant(value_float=1.0) - op.EyeLike(op.Expand(op.Constant(value_float=0.0),
                                                                       op.Concat(k, k, axis=0)))
    similarity = op.ReduceSum(gram * off_diagonal, [2, 3], keepdims=0) / op.Cast(k * (k - 1), to=FLOAT.dtype)
    above = op.Cast(similarity >= op.Constant(value_float=threshold), to=INT64.dtype)
    r = op.ReduceMin(op.ReduceSum(above, [1], keepdims=0), keepdims=1)

    window_rank = DescendingRanks(similarity)
    rows = op.Range(0, op.Squeeze(gh), 1) / op.Squeeze(wh)
    cols = op.Range(0, op.Squeeze(gw), 1) / op.Squeeze(ww)
    patch_window = op.Reshape(op.Unsqueeze(rows, [1]) * (gw / ww) + op.Unsqueeze(cols, [0]), [-1])
    patch_rank = op.Gather(window_rank, patch_window, axis=1)
    merged = patch_rank < r
    patch_slots = op.Where(merged, patch_rank + 1, KeptBefore(merged) + r + 1)
    slots = op.Concat(op.Expand(0, op.Concat(batch, [1], axis=0)), patch_slots, axis=1)
    n_out = gh * gw + 1 + r - k * r
    merged_tokens, merged_sizes = ScatterMean(tokens, op.Expand(op.Constant(value_float=1.0), op.Shape(slots)),
                                              slots, n_out)
    token_map = op.Cast(patch_slots - 1, to=INT32.dtype)
    return merged_tokens, merged_sizes, token_map, op.Cast(op.Squeeze(n_out), to=INT32.dtype)


@script(algm, default_opset=op)
def GlobalMerge(tokens, sizes, token_map, layer_number: int, plugin_version: str, plugin_namespace: str):
    """GBM (see algm_export.merging.assignment.global_assignment)."""
    units = UnitRows(tokens)
    a = op.Slice(units, [0], [9223372036854775807], [1], [2])
    b = op.Slice(units, [1], [9223372036854775807], [1], [2])
    n_a = op.Shape(a, start=1, end=2)
    n_b = op.Shape(b, start=1, end=2)
    scores = op.MatMul(a, op.Transpose(b, perm=[0, 2, 1]))
    is_class_token = op.Unsqueeze(op.Range(0, op.Squeeze(n_a), 1) == 0, [0, 2])
    scores = op.Where(is_class_token, op.Constant(value_float=float("-inf")), scores)
    best_match = op.ArgMax(scores, axis=2, keepdims=0)
    best_score = op.ReduceMax(scores, [2], keepdims=0)

    candidates = op.Slice(best_score, [1], [9223372036854775807], [1])
    means = op.ReduceMean(candidates, [1], keepdims=1)
    deviations = candidates - means
    count = op.Cast(op.Shape(candidates, start=1, end=2), to=FLOAT.dtype)
    stds = op.Sqrt(op.ReduceSum(deviations * deviations, [1], keepdims=0) / (count - op.Constant(value_float=1.0)))
    layer = op.Cast(op.Constant(value_int=layer_number), to=FLOAT.dtype)
    threshold = op.ReduceMean(means, keepdims=0) + op.ReduceMean(stds, keepdims=0) / layer
    above = op.Cast(best_score >= threshold, to=INT64.dtype)
    r = op.ReduceMin(op.ReduceSum(above, [1], keepdims=0), keepdims=1)

    merged = DescendingRanks(best_score) < r
    a_slots = op.Where(merged, best_match + n_a - r, KeptBefore(merged))
    b_slots = op.Expand(op.Range(0, op.Squeeze(n_b), 1) + n_a - r, op.Concat(op.Shape(a, start=0, end=1), n_b, axis=0))
    n_tokens = op.Shape(tokens, start=1, end=2)
    position = op.Range(0, op.Squeeze(n_tokens), 1)
    source = op.Where(op.Mod(position, op.Constant(value_int=2)) == 0, position / 2, position / 2 + n_a)
    slots = op.Gather(op.Concat(a_slots, b_slots, axis=1), source, axis=1)
    n_out = n_tokens - r
    merged_tokens, merged_sizes = ScatterMean(tokens, sizes, slots, n_out)
    patch_slots = op.Slice(slots, [1], [9223372036854775807], [1]) - 1
    new_map = op.Cast(op.GatherElements(patch_slots, op.Cast(token_map, to=INT64.dtype), axis=1), to=INT32.dtype)
    return merged_tokens, merged_sizes, new_map, op.Cast(op.Squeeze(n_out), to=INT32.dtype)


@script(algm, default_opset=op)
def Unmerge(values, token_map, plugin_version: str, plugin_namespace: str):
    """out[b, p] = values[b, token_map[b, p]]."""
    index = op.Unsqueeze(op.Cast(token_map, to=INT64.dtype), [-1])
    shape = op.Concat(op.Shape(token_map), op.Shape(values, start=2, end=3), axis=0)
    return op.GatherElements(values, op.Expand(index, shape), axis=1)


FUNCTIONS = (UnitRows, DescendingRanks, KeptBefore, ScatterMean, LocalMerge, GlobalMerge, Unmerge)


def function_protos() -> list[onnx.FunctionProto]:
    """All function definitions an algm graph needs (the three ops and their helpers)."""
    return [function.to_function_proto() for function in FUNCTIONS]
