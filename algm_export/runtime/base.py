"""The backend interface and what a backend returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..config import WindowSettings
from ..errors import AlgmExportError
from ..preprocess import make_batch
from .metadata import DeploymentInfo
from .outputs import LABELS, LOGITS, SCORES, labels_from_scores


@dataclass
class Prediction:
    """What a backend returns for a batch: the deployment outputs it was asked for (docs/outputs.md) and,
    with ALGM, the merge bookkeeping."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # labels / scores / logits
    token_counts: list[int] | None = None  # tokens (class token included) after each merge
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
        merge bookkeeping of normalized float32 images ``[B, 3, H, W]`` at the export size."""
        height, width = self.info.image_size
        if images.ndim != 4 or images.shape[1:] != (3, height, width) or images.shape[0] < 1:
            raise AlgmExportError(
                f"{self.name}: input of shape {list(images.shape)} does not fit this model, "
                f"which takes [batch, 3, {height}, {width}]"
            )
        wanted = tuple(outputs or self.info.outputs)
        missing = [name for name in wanted if name not in self.info.outputs]
        if missing:
            raise AlgmExportError(f"{self.name}: this model has no {', '.join(missing)} output (it has "
                                  f"{', '.join(self.info.outputs)}; re-export with --outputs)")
        return self._run(np.ascontiguousarray(images, dtype=np.float32), wanted)

    def preprocess(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """RGB uint8 photos -> one normalized batch, each photo resized to the export size (aspect ratio not
        kept: for real images use :func:`segment`, Segmenter's sliding window)."""
        return make_batch(photos, self.info.image_size, self.info.normalization)


def segment(backend: Backend, photos: Sequence[np.ndarray], batch: int = 4, windows: WindowSettings | None = None
            ) -> list[np.ndarray]:
    """Label maps ``[h, w]`` int32 of RGB uint8 photos, each at its photo's own size, with Segmenter's sliding
    window (settings: ``windows``, a :class:`WindowSettings`, default the model's; ``batch`` windows per run)."""
    return list(segment_stream(backend, photos, batch, windows))


def segment_stream(backend: Backend, frames: Iterable[np.ndarray], batch: int = 4,
                   windows: WindowSettings | None = None) -> Iterator[np.ndarray]:
    """Streaming :func:`segment` for video: RGB uint8 frames in (any iterable, consumed lazily), label maps out
    in order, each as soon as its windows have run; windows of consecutive frames share batches of ``batch``."""
    from .sliding import SlidingWindow

    return SlidingWindow(backend, windows, batch).segment(frames)
