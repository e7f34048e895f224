"""The deployment outputs appended to an exported graph (``labels``, ``scores``, ``logits``: docs/outputs.md),
and graphs pruned to a subset of their outputs (ONNX Runtime runs every node of a graph, used or not)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..artifacts import LABELS, LOGITS, OUTPUT_NAMES, SCORES
from .upsampled_argmax import add_upsampled_argmax

GRID_SCORES = "grid_scores"  # the exported model's own output: [B, h, w, n_cls], channels last
NCHW, NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def add_heads(model: onnx.ModelProto, outputs: tuple[str, ...], patch: int) -> onnx.ModelProto:
    """Replace the ``grid_scores`` output by the deployment ``outputs`` (in contract order), before any other
    outputs. ``labels`` is the argmax of the upsampled scores computed per cell on its candidate classes
    (:mod:`.upsampled_argmax`); ``logits`` upsamples NCHW ``scores``."""
    graph = gs.import_onnx(model)
    grid = next(t for t in graph.outputs if t.name == GRID_SCORES)
    batch, height, width, classes = grid.shape
    grid.name = f"{GRID_SCORES}_nhwc"
    size = (height * patch, width * patch)
    heads = {}
    scales = lambda name, values: gs.Constant(name, np.asarray(values, np.float32))  # noqa: E731
    resize = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    if SCORES in outputs or LOGITS in outputs:
        heads[SCORES] = graph.layer(op="Transpose", name="heads/scores", inputs=[grid], attrs={"perm": NCHW},
                                    outputs=[gs.Variable(SCORES, np.float32, [batch, classes, height, width])])[0]
    if LOGITS in outputs:
        heads[LOGITS] = graph.layer(op="Resize", name="heads/logits", attrs=resize,
                                    inputs=[heads[SCORES], gs.Variable.empty(), scales("heads/logit_scales",
                                                                                     [1, 1, patch, patch])],
                                    outputs=[gs.Variable(LOGITS, np.float32, [batch, classes, *size])])[0]
    if LABELS in outputs:
        heads[LABELS] = add_upsampled_argmax(graph, grid, patch, LABELS)
    others = [t for t in graph.outputs if t is not grid]
    graph.outputs = [heads[name] for name in OUTPUT_NAMES if name in outputs] + others
    return gs.export_onnx(graph.cleanup().toposort())


def keep_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` computing only the outputs ``names`` (unused nodes removed)."""
    graph = gs.import_onnx(model)
    graph.outputs = [t for t in graph.outputs if t.name in names]
    pruned = gs.export_onnx(graph.cleanup())  # keeps the model-local functions
    del pruned.metadata_props[:]
    pruned.metadata_props.extend(model.metadata_props)
    return pruned
