"""The deployment outputs a graph, engine or PyTorch model can return (contract: docs/outputs.md)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def upsample(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (half-pixel, ``align_corners=False``) resize of ``[B, C, h, w]`` class scores to ``size``.

    Runs on a channels-last copy of the (small) scores: PyTorch's channels-last upsampling kernel is several
    times faster than the strided default, and its result is channels-last (cheap to argmax over classes).
    """
    if tuple(scores.shape[2:]) == tuple(size):
        return scores
    channels_last = scores.contiguous(memory_format=torch.channels_last)
    return F.interpolate(channels_last, size=tuple(size), mode="bilinear", align_corners=False)


def argmax_labels(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel class index ``[B, H, W]`` int32 of ``[B, C, H, W]`` logits (first maximum on ties)."""
    return logits.argmax(dim=1).to(torch.int32)


def labels_from_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels ``[B, H, W]`` int32 of patch-grid scores, as the graphs' ``labels`` output computes them."""
    with torch.no_grad():
        return argmax_labels(upsample(torch.from_numpy(scores).float(), size)).numpy()
