"""The backend interface, preprocessing of photos and postprocessing of logits to labels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import AlgmExportError
from ..preprocess import labels_at, make_batch
from .metadata import DeploymentInfo


@dataclass
class Prediction:
    """What a backend returns for a batch."""

    logits: np.ndarray  # [B, n_cls, H, W] float32
    token_counts: list[int] | None = None  # tokens (class token included) after each merge
    token_maps: np.ndarray | None = None  # [B, merges, N] int32: patch -> token after each merge

    def labels(self) -> np.ndarray:
        """Per-pixel class indices ``[B, H, W]``."""
        return self.logits.argmax(axis=1).astype(np.int32)


class Backend(ABC):
    """A model ready to run on one backend at a fixed input size (any batch size)."""

    name: str
    info: DeploymentInfo

    @abstractmethod
    def _run(self, images: np.ndarray) -> Prediction:
        """Run a checked batch."""

    def run(self, images: np.ndarray) -> Prediction:
        """Logits (and merge bookkeeping) for normalized float32 images ``[B, 3, H, W]`` at the export size."""
        height, width = self.info.image_size
        if images.ndim != 4 or images.shape[1:] != (3, height, width) or images.shape[0] < 1:
            raise AlgmExportError(
                f"{self.name}: input of shape {list(images.shape)} does not fit this model, "
                f"which takes [batch, 3, {height}, {width}]"
            )
        return self._run(np.ascontiguousarray(images, dtype=np.float32))

    def preprocess(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 photos -> a normalized batch at the export size."""
        return make_batch(photos, self.info.image_size, self.info.normalization)


def segment(backend: Backend, photos: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Label maps of RGB uint8 photos, each at its photo's own size (one batch)."""
    labels = backend.run(backend.preprocess(photos)).labels()
    return [labels_at(label, photo.shape[:2]) for label, photo in zip(labels, photos)]
