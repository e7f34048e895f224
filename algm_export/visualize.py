"""Colour label maps for viewing."""

from __future__ import annotations

import numpy as np

from .datasets import palette


def colorize(labels: np.ndarray, n_cls: int) -> np.ndarray:
    """Label map ``[H, W]`` -> RGB uint8 ``[H, W, 3]`` with the fixed class palette."""
    return palette(n_cls)[labels]


def side_by_side(photo: np.ndarray, labels: np.ndarray, n_cls: int) -> np.ndarray:
    """The photo and its coloured label map next to each other."""
    return np.concatenate([photo, colorize(labels, n_cls)], axis=1)
