"""Segmenter's sliding-window inference for images of any size (contract: docs/outputs.md).

Per image: resize keeping the aspect ratio so that the short side is ``im_size``; windows of the model's
input size every ``window_stride`` pixels, the last one flush with the border; windows of consecutive
images run together in batches; the logits of overlapping windows are averaged and resized back to the
image, whose label is their argmax.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..artifacts import LABELS, LOGITS, SCORES
from ..config import WindowSettings
from ..errors import AlgmExportError
from ..outputs import upsample
from ..photos import as_rgb8
from ..preprocess import OPENCV, normalize, resize_rgb
from .base import Backend, rgb_photos

LONG_SIDE_CAP = 4  # the long side is at most 4 x im_size (mmseg's (2048, 512) rescale)
# Largest image the windows are cut from. Fitting a thin image's short side to the window undoes the cap above
# (a 1x2000 image would become 512x1,048,576: 2048 windows, > 200 GB of logits); 16 MP is 64 windows of 512x512,
# a 512x32768 strip, far above a 4K frame (910x512) or a panorama at the research size (512x3908 for 4000x512).
MAX_RESIZED_PIXELS = 16 * 2**20
MAX_BATCH = 64  # windows per model run: windows of consecutive images share batches, so memory grows with it
CANDIDATES_PER_CELL = 2  # classes kept per patch-grid cell when averaging windows


def axis_anchors(length: int, window: int, stride: int) -> list[int]:
    """Window starts along one axis: 0, stride, ... while ``< length - window``, then ``length - window``."""
    return [a for a in range(0, length, stride) if a < length - window] + [length - window]


def resized_size(size: tuple[int, int], settings: WindowSettings, window: tuple[int, int]) -> tuple[int, int]:
    """The size an image of ``size`` is resized to: short side ``im_size`` (long side at most 4x), then, where
    a side is still smaller than the window, scaled up so that it fits (the research ``resize``)."""
    height, width = size
    scale = min(settings.im_size / min(height, width), LONG_SIDE_CAP * settings.im_size / max(height, width))
    height, width = max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
    if height < window[0] or width < window[1]:
        ratio = max(window[0] / height, window[1] / width)
        height, width = max(window[0], int(height * ratio)), max(window[1], int(width * ratio))
    if height * width > MAX_RESIZED_PIXELS:
        raise AlgmExportError(f"a {size[0]}x{size[1]} image (aspect ratio {max(size) / min(size):.0f}:1) would be "
                              f"resized to {height}x{width} for the sliding window, above the "
                              f"{MAX_RESIZED_PIXELS // 2**20} MP supported; crop or pad it")
    return height, width


@dataclass(frozen=True)
class WindowPlan:
    """Where one image's windows lie."""

    original: tuple[int, int]  # the image's size
    resized: tuple[int, int]  # the size the windows are cut from
    window: tuple[int, int]
    rows: tuple[int, ...]  # window starts
    cols: tuple[int, ...]
    scaled: tuple[int, int] | None = None  # test-time views: the uint8 resize, enlarged to `resized` in float after
    flip: bool = False  # test-time views: the image is flipped horizontally after its uint8 resize

    @classmethod
    def of(cls, size: tuple[int, int], settings: WindowSettings, window: tuple[int, int]) -> "WindowPlan":
        """The plan for an image of ``size``."""
        resized = resized_size(size, settings, window)
        rows = tuple(axis_anchors(resized[0], window[0], settings.window_stride))
        return cls(tuple(size), resized, tuple(window), rows,
                   tuple(axis_anchors(resized[1], window[1], settings.window_stride)))

    @property
    def anchors(self) -> list[tuple[int, int]]:
        """Window starts (row, column), row-major."""
        return [(row, col) for row in self.rows for col in self.cols]

    @property
    def direct(self) -> bool:
        """One window covering an image already at the window size: the model's labels are the answer."""
        return self.original == self.resized == self.window

    def crops(self, photo: np.ndarray, normalization, method: str = OPENCV) -> np.ndarray:
        """The normalized windows ``[n, 3, wh, ww]`` of an RGB uint8 photo (resized with ``method``, see
        :func:`resize_rgb`; a test-time view is resized to ``scaled``, flipped, normalized and enlarged
        bilinearly to ``resized``, as the research ``inference`` does)."""
        image = resize_rgb(photo, self.scaled or self.resized, method)
        image = normalize(image[:, ::-1] if self.flip else image, normalization)
        if self.scaled is not None and self.scaled != self.resized:
            with torch.no_grad():
                image = torch.nn.functional.interpolate(torch.from_numpy(image)[None], self.resized, mode="bilinear",
                                                        align_corners=False)[0].numpy()
        wh, ww = self.window
        return np.stack([image[:, r : r + wh, c : c + ww] for r, c in self.anchors])


def merge_windows(plan: WindowPlan, fields: np.ndarray) -> np.ndarray:
    """Labels ``[h, w]`` (int32, at the image's size) of one image from its windows' ``scores``
    ``[n, C, h', w']`` or ``logits`` ``[n, C, wh, ww]``: windows upsampled to the window size, averaged where
    they overlap, resized to the image, argmax.

    The classes kept are those among the top two of some cell (a class that is not among the top two of any
    contributing cell cannot win a convex combination of them in practice); the final resize is evaluated
    only where its four source pixels disagree on the class, since elsewhere the argmax of a convex
    combination is their common argmax.
    """
    with torch.no_grad():
        grids = torch.from_numpy(fields).float()
        candidates = torch.unique(grids.topk(min(CANDIDATES_PER_CELL, grids.shape[1]), dim=1).indices)
        grids = grids[:, candidates]
        height, width = plan.resized
        total = torch.zeros(height, width, len(candidates))
        for window, (row, col) in zip(grids, plan.anchors):
            logits = upsample(window[None], plan.window)[0].permute(1, 2, 0)  # channels last: a view
            total[row : row + plan.window[0], col : col + plan.window[1]] += logits
        covered_rows = np.concatenate([np.arange(r, r + plan.window[0]) for r in plan.rows])
        count_rows = np.bincount(covered_rows, minlength=height)
        count_cols = np.bincount(np.concatenate([np.arange(c, c + plan.window[1]) for c in plan.cols]), minlength=width)
        count = torch.from_numpy(np.outer(count_rows, count_cols).astype(np.float32))
        average = (total / count[..., None]).numpy()
    labels = resize_argmax(average, plan.original)
    return candidates.numpy().astype(np.int32)[labels]


def _taps(size_out: int, size_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's bilinear source pixels and weight (half-pixel, align_corners=False, no antialias)."""
    scale = np.float32(size_in / size_out)
    source = np.maximum((np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    first = np.minimum(source.astype(np.int64), size_in - 1)
    return first, np.minimum(first + 1, size_in - 1), (source - first).astype(np.float32)


def resize_argmax(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``argmax`` over the last axis of ``values`` ``[h, w, C]`` bilinearly resized to ``size``."""
    if values.shape[:2] == tuple(size):
        return values.argmax(axis=-1)
    labels = values.argmax(axis=-1)
    y0, y1, fy = _taps(size[0], values.shape[0])
    x0, x1, fx = _taps(size[1], values.shape[1])
    corners = [labels[np.ix_(ys, xs)] for ys in (y0, y1) for xs in (x0, x1)]
    result = corners[0].copy()
    mixed = np.nonzero((corners[0] != corners[1]) | (corners[0] != corners[2]) | (corners[0] != corners[3]))
    if mixed[0].size:
        ys, xs = mixed
        wy, wx = fy[ys, None], fx[xs, None]
        top = (1 - wx) * values[y0[ys], x0[xs]] + wx * values[y0[ys], x1[xs]]
        bottom = (1 - wx) * values[y1[ys], x0[xs]] + wx * values[y1[ys], x1[xs]]
        result[ys, xs] = ((1 - wy) * top + wy * bottom).argmax(axis=-1)
    return result


@dataclass
class Segmentation:
    """One image's result."""

    labels: np.ndarray  # [h, w] int32 at the image's size
    plan: WindowPlan
    token_maps: np.ndarray | None  # [windows, merges, N] int32 with ALGM
    token_counts: list[list[int]] | None  # per window: its tokens after each merge


@dataclass
class PendingImage:
    """An image (or test-time view) whose windows are (partly) queued or run, then their outputs."""

    plan: WindowPlan
    fields: list = field(default_factory=list)  # per window: labels, scores or logits
    maps: list = field(default_factory=list)
    counts: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.fields) == len(self.plan.anchors)

    def result(self) -> Segmentation:
        fields = np.stack(self.fields)
        labels = fields[0].astype(np.int32) if fields.ndim == 3 else merge_windows(self.plan, fields)
        return Segmentation(labels, self.plan, np.stack(self.maps) if self.maps else None, self.counts or None)


class SlidingWindow:
    """Segment images of any size with ``backend``: windows of consecutive images are batched ``batch`` at a
    time (with the per-image batch rule each window merges as it would alone; with the published rule,
    ``min``, r is shared inside each batch, as in the research code)."""

    def __init__(self, backend: Backend, settings: WindowSettings | None = None, batch: int = 4,
                 resize: str = OPENCV, labels_shortcut: bool = True):
        if not 1 <= batch <= MAX_BATCH:
            raise AlgmExportError(f"--batch must be in 1..{MAX_BATCH} (windows per run; memory grows with it), "
                                  f"got {batch}")
        self.backend, self.batch, self.resize = backend, batch, resize
        self.labels_shortcut = labels_shortcut  # False: always the class fields, even for a window-sized image
        self.settings = settings or backend.info.windows
        self.window = tuple(backend.info.image_size)
        if self.settings.window_size != self.window[0]:
            raise AlgmExportError(f"sliding window: window_size {self.settings.window_size} differs from the model's "
                                  f"input size {self.window[0]}x{self.window[1]} (export at --image-size "
                                  f"{self.settings.window_size})")
        available = backend.info.outputs
        self.field = SCORES if SCORES in available else LOGITS if LOGITS in available else None

    def segment(self, photos: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Label maps ``[h, w]`` int32, one per RGB uint8 photo, in order (photos are consumed lazily)."""
        for result in self.run(photos):
            yield result.labels

    def run(self, photos: Iterable[np.ndarray]) -> Iterator[Segmentation]:
        """:class:`Segmentation` per photo, in order, as soon as its last window has run."""
        plans = ((WindowPlan.of(photo.shape[:2], self.settings, self.window), photo) for photo in photos)
        for image in self.run_plans(plans):
            yield image.result()

    def run_plans(self, items: Iterable[tuple[WindowPlan, np.ndarray]]) -> Iterator[PendingImage]:
        """The window outputs of each (plan, RGB uint8 photo), in order, as soon as its last window has run."""
        images: deque[PendingImage] = deque()
        queue: list[tuple[PendingImage, np.ndarray]] = []
        for plan, photo in items:
            image = PendingImage(plan)
            images.append(image)
            queue.extend((image, crop) for crop in plan.crops(photo, self.backend.info.normalization, self.resize))
            while len(queue) >= self.batch:
                self._run_batch(queue[: self.batch])
                del queue[: self.batch]
                while images and images[0].complete:
                    yield images.popleft()
        if queue:
            self._run_batch(queue)
        yield from images

    def _run_batch(self, windows: list[tuple[PendingImage, np.ndarray]]) -> None:
        direct = (self.labels_shortcut and all(image.plan.direct for image, _ in windows)
                  and LABELS in self.backend.info.outputs)
        if not direct and self.field is None:
            raise AlgmExportError(f"{self.backend.name}: this model outputs only labels, which cannot be averaged "
                                  f"over windows or resized; images must be {self.window[0]}x{self.window[1]} or "
                                  "the model re-exported with --outputs labels,scores")
        name = LABELS if direct else self.field
        prediction = self.backend.run(np.stack([crop for _, crop in windows]), (name,))
        for index, (image, _) in enumerate(windows):
            image.fields.append(prediction.outputs[name][index])
            if prediction.token_maps is not None:
                image.maps.append(prediction.token_maps[index])
                image.counts.append(prediction.token_counts[index].tolist())


def segment(backend: Backend, photos: Sequence[np.ndarray], batch: int = 4, windows: WindowSettings | None = None
            ) -> list[np.ndarray]:
    """Label maps ``[h, w]`` int32 of photos (RGB, grayscale or RGBA; uint8, uint16 or float in [0, 1]), each
    at its photo's own size, with Segmenter's sliding window (settings: ``windows``, a :class:`WindowSettings`,
    default the model's; ``batch`` windows per run)."""
    return list(segment_stream(backend, rgb_photos(photos, backend.name), batch, windows))


def segment_stream(backend: Backend, frames: Iterable[np.ndarray], batch: int = 4,
                   windows: WindowSettings | None = None) -> Iterator[np.ndarray]:
    """Streaming :func:`segment` for video: frames in (any iterable, consumed lazily; see :func:`as_rgb8`),
    label maps out in order, each as soon as its windows have run; windows of consecutive frames share
    batches of ``batch``."""
    rgb = (as_rgb8(frame, f"frame {i}") for i, frame in enumerate(frames))
    return SlidingWindow(backend, windows, batch).segment(rgb)
