"""The in-graph ``labels`` head: argmax of the bilinearly upsampled scores, computed per cell on candidate
classes, against PyTorch's ``F.interpolate(...).argmax`` over every class."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from algm_export.export.fp16 import convert_to_fp16
from algm_export.export.upsampled_argmax import CANDIDATE_TIERS, add_upsampled_argmax


def _labels_session(height: int, width: int, classes: int, patch: int, fp16: bool = False):
    graph = gs.Graph(opset=18)
    grid = gs.Variable("grid", np.float32, ["batch", height, width, classes])
    graph.inputs = [grid]
    graph.outputs = [add_upsampled_argmax(graph, grid, patch, "labels")]
    model = gs.export_onnx(graph.cleanup().toposort())
    model.ir_version = 10
    if fp16:
        model = convert_to_fp16(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _reference(grid: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's labels and, per pixel, the gap between its two best classes."""
    logits = F.interpolate(torch.from_numpy(grid).permute(0, 3, 1, 2), scale_factor=patch, mode="bilinear",
                           align_corners=False)
    top2 = logits.topk(2, dim=1).values if logits.shape[1] > 1 else torch.cat([logits, logits - 1], 1)
    return logits.argmax(1).numpy(), (top2[:, 0] - top2[:, 1]).numpy()


def _candidate_counts(grid: np.ndarray) -> np.ndarray:
    """Per cell, the number of classes whose corner maximum reaches the cell's best corner minimum."""
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    corners = np.stack([padded[:, :-1, :-1], padded[:, :-1, 1:], padded[:, 1:, :-1], padded[:, 1:, 1:]])
    low, high = corners.min(0), corners.max(0)
    return (high >= low.max(-1, keepdims=True)).sum(-1)


def _regions(rng: np.random.Generator, batch: int, height: int, width: int, classes: int, noise: float) -> np.ndarray:
    """Scores shaped like a segmenter's: smooth class regions plus noise."""
    coarse = torch.from_numpy(rng.normal(0, 3, (batch, classes, max(height // 4, 1), max(width // 4, 1))))
    smooth = F.interpolate(coarse.float(), size=(height, width), mode="bilinear").permute(0, 2, 3, 1).numpy()
    return (smooth + rng.normal(0, noise, smooth.shape)).astype(np.float32)


@pytest.mark.parametrize("height, width, classes, patch", [
    (32, 32, 150, 16), (5, 7, 21, 16), (6, 4, 40, 8), (4, 5, 10, 15), (3, 3, 2, 14), (2, 3, 1, 16)])
def test_labels_equal_argmax_of_upsampled_scores(height, width, classes, patch):
    rng = np.random.default_rng(height * 1000 + classes)
    grid = np.concatenate([_regions(rng, 2, height, width, classes, 0.3),
                           rng.normal(0, 1, (1, height, width, classes)).astype(np.float32)])
    labels = _labels_session(height, width, classes, patch).run(None, {"grid": grid})[0]
    reference, gap = _reference(grid, patch)
    assert labels.shape == reference.shape and labels.dtype == np.int32
    differ = labels != reference
    assert not differ.any() or gap[differ].max() < 1e-4, f"{differ.sum()} pixels differ beyond float rounding"


def test_every_candidate_tier_is_exercised_and_exact():
    """Scores where cells have every number of candidates, from one to all classes."""
    rng = np.random.default_rng(7)
    grid = np.concatenate([_regions(rng, 3, 32, 32, 150, noise) for noise in (0.1, 1.0, 3.0)])
    counts = _candidate_counts(grid)
    bounds = [1, *CANDIDATE_TIERS, 150]
    for fewer, most in zip(bounds, bounds[1:]):
        assert ((counts > fewer) & (counts <= most)).any(), f"no cell with {fewer + 1}..{most} candidates"
    assert (counts == 1).any()
    labels = _labels_session(32, 32, 150, 16).run(None, {"grid": grid})[0]
    reference, gap = _reference(grid, 16)
    differ = labels != reference
    assert not differ.any() or gap[differ].max() < 1e-4


def test_ties_take_the_first_class_like_torch():
    grid = np.zeros((1, 4, 4, 5), np.float32)
    grid[0, :2, :, 3] = 1.0  # class 3 on top, every class tied below
    labels = _labels_session(4, 4, 5, 16).run(None, {"grid": grid})[0]
    assert (labels == _reference(grid, 16)[0]).all()
    assert set(np.unique(labels)) == {0, 3}


def test_fp16_graph_keeps_the_labels():
    rng = np.random.default_rng(3)
    grid = _regions(rng, 2, 32, 32, 150, 0.3)
    labels = _labels_session(32, 32, 150, 16, fp16=True).run(None, {"grid": grid})[0]
    reference, gap = _reference(grid.astype(np.float16).astype(np.float32), 16)  # what the graph computes on
    differ = labels != reference
    assert differ.mean() < 1e-2 and (not differ.any() or gap[differ].max() < 0.02)  # FP16 rounding near-ties


def test_a_wrong_cell_geometry_is_caught(monkeypatch):
    """The comparison above sees a head whose cells are one pixel off (a wrong half-pixel offset)."""
    import algm_export.export.upsampled_argmax as head
    right = head.cell_weights
    monkeypatch.setattr(head, "cell_weights", lambda patch: (right(patch)[0], right(patch)[1] + 1))
    grid = _regions(np.random.default_rng(5), 1, 32, 32, 150, 0.3)
    labels = _labels_session(32, 32, 150, 16).run(None, {"grid": grid})[0]
    assert (labels != _reference(grid, 16)[0]).mean() > 1e-3
