"""The backend interface and what a backend returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..artifacts import LABELS, LOGITS, SCORES
from ..deployment import DeploymentInfo
from ..errors import AlgmExportError
from ..outputs import labels_from_scores
from ..photos import as_rgb8
from ..preprocess import make_batch


@dataclass
class Prediction:
    """What a backend returns for a batch: the deployment outputs it was asked for (docs/outputs.md) and,
    with ALGM, the merge bookkeeping."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # labels / scores / logits
    # [B, merges] int64: each image's tokens (class token included) after each merge
    token_counts: np.ndarray | None = None
    token_maps: np.ndarray | None = None  # [B, merges, N] int32: patch -> token after each merge

    @property
    def logits(self) -> np.ndarray | None:
        """``[B, n_cls, H, W]`` float32, when returned."""
        return self.outputs.get(LOGITS)

    @property
    def scores(self) -> np.ndarray | None:
        """``[B, n_cls, h, w]`` float32 patch-grid scores, when returned."""
        return self.outputs.get(SCORES)

    def labels(self, image_size: tuple[int, int] | None = None) -> np.ndarray:
        """Per-pixel class indices ``[B, H, W]`` int32: the ``labels`` output, else the argmax of ``logits``,
        else of ``scores`` upsampled to ``image_size``."""
        if LABELS in self.outputs:
            return self.outputs[LABELS]
        if LOGITS in self.outputs:
            return self.outputs[LOGITS].argmax(axis=1).astype(np.int32)
        if image_size is None:
            raise AlgmExportError("labels from scores need the image size")
        return labels_from_scores(self.outputs[SCORES], image_size)


class Backend(ABC):
    """A model ready to run on one backend at a fixed input size (any batch size)."""

    name: str
    info: DeploymentInfo

    @abstractmethod
    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        """Run a checked batch, returning (at least) ``outputs``."""

    def run(self, images: np.ndarray, outputs: Sequence[str] | None = None) -> Prediction:
        """The deployment ``outputs`` (default: all this backend has; see :attr:`DeploymentInfo.outputs`) and
        merge bookkeeping of normalized float images ``[B, 3, H, W]`` at the export size (e.g. from
        :meth:`preprocess`). AlgmExportError for anything else: other types, integer, bool, complex or object
        pixels, non-finite values, other shapes, outputs the model does not have."""
        checked = check_batch(images, self.info.image_size, self.name)
        wanted = tuple(outputs or self.info.outputs)
        missing = [name for name in wanted if name not in self.info.outputs]
        if missing:
            raise AlgmExportError(f"{self.name}: this model has no {', '.join(missing)} output (it has "
                                  f"{', '.join(self.info.outputs)}; re-export with --outputs)")
        return self._run(np.ascontiguousarray(checked, dtype=np.float32), wanted)

    def preprocess(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """Photos (RGB, grayscale or RGBA; uint8, uint16 or float in [0, 1]) -> one normalized float32 batch,
        each photo resized to the export size (aspect ratio not kept: for real images use :func:`segment`,
        Segmenter's sliding window)."""
        return make_batch(rgb_photos(photos, self.name), self.info.image_size, self.info.normalization)


def rgb_photos(photos: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    """A non-empty list of photos (see :func:`as_rgb8`) as RGB uint8 arrays; AlgmExportError otherwise."""
    if isinstance(photos, (np.ndarray, str, bytes)) or not isinstance(photos, Sequence) or len(photos) == 0:
        got = "an empty list" if isinstance(photos, Sequence) and len(photos) == 0 else type(photos).__name__
        raise AlgmExportError(f"{name}: expected a non-empty list of photo arrays, got {got}")
    return [as_rgb8(photo, f"photo {i}") for i, photo in enumerate(photos)]


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
