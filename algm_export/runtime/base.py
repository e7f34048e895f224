"""The backend interface, preprocessing of photos and postprocessing of logits to labels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import AlgmExportError
from ..photos import as_rgb8
from ..preprocess import labels_at, make_batch
from .metadata import DeploymentInfo


@dataclass
class Prediction:
    """What a backend returns for a batch."""

    logits: np.ndarray  # [B, n_cls, H, W] float32
    token_counts: np.ndarray | None = None  # [B, merges] int64: each image's tokens (class token included) after each merge
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
        """Logits (and merge bookkeeping) for normalized float images ``[B, 3, H, W]`` at the export size
        (e.g. from :meth:`preprocess`). AlgmExportError for anything else: other types, integer, bool,
        complex or object pixels, non-finite values, other shapes."""
        checked = check_batch(images, self.info.image_size, self.name)
        return self._run(np.ascontiguousarray(checked, dtype=np.float32))

    def preprocess(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """Photos (RGB, grayscale or RGBA; uint8, uint16 or float in [0, 1]) -> a normalized float32 batch
        at the export size."""
        if isinstance(photos, (np.ndarray, str, bytes)) or not isinstance(photos, Sequence) or len(photos) == 0:
            got = "an empty list" if isinstance(photos, Sequence) and len(photos) == 0 else type(photos).__name__
            raise AlgmExportError(f"{self.name}: expected a non-empty list of photo arrays, got {got}")
        rgb = [as_rgb8(photo, f"photo {i}") for i, photo in enumerate(photos)]
        return make_batch(rgb, self.info.image_size, self.info.normalization)


def check_batch(images: object, size: tuple[int, int], name: str) -> np.ndarray:
    """``images`` if it is a finite float array ``[B, 3, H, W]`` with B >= 1 at ``size``; else AlgmExportError."""
    height, width = size
    expected = f"normalized float images [batch, 3, {height}, {width}] (backend.preprocess(photos) makes them)"
    if not isinstance(images, np.ndarray):
        raise AlgmExportError(f"{name}: expected a numpy array of {expected}, got {type(images).__name__}")
    if images.dtype not in (np.float16, np.float32, np.float64):
        raise AlgmExportError(f"{name}: pixels of type {images.dtype}; expected {expected}")
    if images.ndim != 4 or images.shape[1:] != (3, height, width) or images.shape[0] < 1:
        raise AlgmExportError(f"{name}: input of shape {list(images.shape)} does not fit this model, "
                              f"which takes [batch, 3, {height}, {width}]")
    if not np.isfinite(images).all():
        raise AlgmExportError(f"{name}: the input holds NaN or infinite values")
    return images


def segment(backend: Backend, photos: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Label maps of photos (see :meth:`Backend.preprocess`), each at its photo's own size (one batch)."""
    labels = backend.run(backend.preprocess(photos)).labels()
    return [labels_at(label, photo.shape[:2]) for label, photo in zip(labels, photos)]
