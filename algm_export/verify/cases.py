"""Verification inputs: every image alone (batch 1) and a mixed batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Normalization
from ..preprocess import make_batch


@dataclass(frozen=True)
class Case:
    """One verification run: a batch of named images, preprocessed."""

    names: tuple[str, ...]
    images: np.ndarray  # [B, 3, H, W] float32, normalized

    @property
    def label(self) -> str:
        """``name`` for batch 1, ``batch of N`` otherwise."""
        return self.names[0] if len(self.names) == 1 else f"batch of {len(self.names)}"


def make_cases(photos: dict[str, np.ndarray], size: tuple[int, int], normalization: Normalization,
               mixed_batch: int) -> list[Case]:
    """Batch-1 cases for every photo, then one mixed batch of the first ``mixed_batch`` photos (if >= 2)."""
    names = list(photos)
    batch = make_batch([photos[n] for n in names], size, normalization)
    cases = [Case((name,), batch[i : i + 1]) for i, name in enumerate(names)]
    count = min(mixed_batch, len(names))
    if count >= 2:
        cases.append(Case(tuple(names[:count]), batch[:count]))
    return cases
