"""``labels`` in the graph: the argmax over classes of the bilinearly upsampled scores, without the
full-resolution logits.

Bilinear upsampling (half-pixel centres, edge clamp) by the patch size ``p`` splits the output into cells
of ``p x p`` pixels, each interpolating the four grid scores at its corners (the grid padded by one
edge copy). Inside a cell every class's logit is a convex combination of its four corner values, so it
lies between their minimum ``lo`` and maximum ``hi``. The pixel's winner therefore has ``hi >= M``, where
``M`` is the largest ``lo`` of the cell: the ``n`` classes with ``hi >= M`` (the top ``n`` by ``hi``)
are the only candidates. Cells with one candidate (most of an image) take it; the others evaluate their
``p*p`` pixels over their candidates only, grouped by ``n`` into tiers of a fixed number of candidates,
the last tier over every class. The result equals ``argmax(resize(scores))`` up to float rounding
between near-equal classes, at a fraction of the cost: ONNX Runtime spends most of a labels head in the
full Resize and ArgMax (40M values for 150 classes at 512x512).

All standard ONNX ops (NonZero, TopK, GatherElements, ScatterND: ONNX Runtime, TensorRT, polygraphy).
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnx_graphsurgeon as gs

# Candidates per cell in each tier, then every class: measured on the ViT-S/16 sample's scores (150 classes,
# ONNX Runtime, one thread): 0.17x the time of Resize + ArgMax, against 0.22x with the ArgMax over a middle
# (strided) axis and 0.3x without the one-candidate shortcut.
CANDIDATE_TIERS = (2, 4, 8, 16, 32)


def cell_weights(patch: int) -> tuple[np.ndarray, int]:
    """Bilinear weights ``[4, patch*patch]`` of a cell's corners (top-left, top-right, bottom-left,
    bottom-right) for its pixels in row-major order, and the offset of the first cell's first pixel
    (cells start ``offset`` pixels before the image)."""
    offset = (patch + 1) // 2
    fraction = (np.arange(patch) - offset + 0.5) / patch + 0.5  # position between the two corner rows
    rows, cols = fraction[:, None], fraction[None, :]
    weights = np.stack([(1 - rows) * (1 - cols), (1 - rows) * cols, rows * (1 - cols), rows * cols])
    return weights.reshape(4, patch * patch).astype(np.float32), offset


class _Builder:
    """Adds uniquely named nodes and constants under ``prefix`` to ``graph``."""

    def __init__(self, graph: gs.Graph, prefix: str):
        self.graph, self.prefix, self.count = graph, prefix, itertools.count()

    def const(self, value, dtype=np.int64) -> gs.Constant:
        return gs.Constant(f"{self.prefix}/c{next(self.count)}", np.asarray(value, dtype))

    def op(self, op: str, inputs: list, dtype=np.float32, outputs: int = 1, **attrs):
        dtypes = dtype if isinstance(dtype, list) else [dtype] * outputs
        made = [gs.Variable(f"{self.prefix}/{op}_{next(self.count)}", d) for d in dtypes]
        self.graph.layer(op=op, name=made[0].name, inputs=inputs, outputs=made, attrs=attrs)
        return made[0] if outputs == 1 else made


def add_upsampled_argmax(graph: gs.Graph, grid: gs.Tensor, patch: int, name: str) -> gs.Variable:
    """Append to ``graph`` the int32 tensor ``name`` ``[B, h*patch, w*patch]``: the argmax over classes of
    ``grid`` (``[B, h, w, n_cls]``, channels last) upsampled bilinearly by ``patch``."""
    _, height, width, classes = grid.shape
    b = _Builder(graph, "heads/labels")
    weights, offset = cell_weights(patch)
    pixels = patch * patch
    padded = b.op("Pad", [grid, b.const([0, 1, 1, 0, 0, 1, 1, 0])], grid.dtype, mode="edge")
    corners = [b.op("Slice", [padded, b.const([r, c]), b.const([r + height + 1, c + width + 1]), b.const([1, 2])],
                    grid.dtype) for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))]
    low = b.op("Reshape", [b.op("Min", corners, grid.dtype), b.const([-1, classes])], grid.dtype)    # [cells, C]
    high = b.op("Reshape", [b.op("Max", corners, grid.dtype), b.const([-1, classes])], grid.dtype)
    is_candidate = b.op("GreaterOrEqual", [high, b.op("ReduceMax", [low, b.const([1])], grid.dtype, keepdims=1)],
                        np.bool_)
    counts = b.op("ReduceSum", [b.op("Cast", [is_candidate], np.int64, to=onnx.TensorProto.INT64), b.const([1])],
                  np.int64, keepdims=0)                                                               # [cells]
    stacked = b.op("Concat", [b.op("Unsqueeze", [c, b.const([3])], grid.dtype) for c in corners], grid.dtype, axis=3)
    corner_values = b.op("Reshape", [stacked, b.const([-1, 4, classes])], grid.dtype)                 # [cells, 4, C]
    one_candidate = b.op("ArgMax", [low], np.int64, axis=1, keepdims=1)                                # [cells, 1]
    labels = b.op("Expand", [b.op("Cast", [one_candidate], np.int32, to=onnx.TensorProto.INT32), b.const([1, pixels])],
                  np.int32)
    tiers = [k for k in CANDIDATE_TIERS if k < classes] + [classes]
    rows, tier_labels = [], []
    for fewer, most in zip([1] + tiers, tiers):
        selected = b.op("Greater", [counts, b.const(fewer)], np.bool_)
        if most < classes:
            selected = b.op("And", [selected, b.op("LessOrEqual", [counts, b.const(most)], np.bool_)], np.bool_)
        cells = b.op("Squeeze", [b.op("NonZero", [selected], np.int64), b.const([0])], np.int64)    # [H]
        values = b.op("Gather", [corner_values, cells], grid.dtype, axis=0)                          # [H, 4, C]
        candidates = None
        if most < classes:
            _, candidates = b.op("TopK", [b.op("Gather", [high, cells], grid.dtype, axis=0), b.const([most])],
                                 [grid.dtype, np.int64], outputs=2, axis=1)                           # [H, K]
            shape = b.op("Concat", [b.op("Shape", [candidates], np.int64, start=0, end=1), b.const([4, most])],
                         np.int64, axis=0)
            spread = b.op("Expand", [b.op("Unsqueeze", [candidates, b.const([1])], np.int64), shape], np.int64)
            values = b.op("GatherElements", [values, spread], grid.dtype, axis=2)                     # [H, 4, K]
        by_corner = b.op("Reshape", [b.op("Transpose", [values], grid.dtype, perm=[1, 0, 2]), b.const([4, -1])],
                         grid.dtype)                                                                  # [4, H*K]
        pixel_values = b.op("MatMul", [b.const(weights.T, np.float32), by_corner], grid.dtype)          # [p*p, H*K]
        pixel_values = b.op("Reshape", [pixel_values, b.const([pixels, -1, most])], grid.dtype)
        best = b.op("Transpose", [b.op("ArgMax", [pixel_values], np.int64, axis=2, keepdims=0)], np.int64,
                    perm=[1, 0])                                                                      # [H, p*p]
        if candidates is not None:
            best = b.op("GatherElements", [candidates, best], np.int64, axis=1)
        rows.append(cells)
        tier_labels.append(b.op("Cast", [best], np.int32, to=onnx.TensorProto.INT32))
    updates = b.op("Concat", tier_labels, np.int32, axis=0)
    labels = b.op("ScatterND", [labels, b.op("Unsqueeze", [b.op("Concat", rows, np.int64, axis=0), b.const([1])],
                                                 np.int64), updates], np.int32)                      # [cells, p*p]
    tiles = b.op("Reshape", [labels, b.const([-1, height + 1, width + 1, patch, patch])], np.int32)
    image = b.op("Reshape", [b.op("Transpose", [tiles], np.int32, perm=[0, 1, 3, 2, 4]),
                             b.const([-1, (height + 1) * patch, (width + 1) * patch])], np.int32)
    output = gs.Variable(name, np.int32, [grid.shape[0], height * patch, width * patch])
    graph.layer(op="Slice", name=f"{b.prefix}/crop", outputs=[output],
                inputs=[image, b.const([offset, offset]), b.const([offset + height * patch, offset + width * patch]),
                        b.const([1, 2])])
    return output
