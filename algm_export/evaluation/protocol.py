"""The research code's test-time views (segm/eval/miou.py, mmseg ``MultiScaleFlipAug``): each image is seen at
several scales, each view optionally also flipped; every view goes through the sliding window, its averaged
window logits are resized to the image, flipped back and turned into softmax maps, which are averaged over the
views; the label is their argmax.

Single scale without flip is not done here: it is exactly ``predict``'s path (:class:`SlidingWindow`), whose
argmax of the resized logits equals the argmax of their softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..config import WindowSettings
from ..outputs import upsample
from ..runtime.sliding import LONG_SIDE_CAP, PendingImage, SlidingWindow, WindowPlan, axis_anchors

MULTISCALE_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # set_multiscale_mode(): img_ratios of img_scale (2048, 512)


@dataclass(frozen=True)
class View:
    """One test-time view: a scale ratio of the model's im_size, flipped or not."""

    ratio: float
    flip: bool


def views(multiscale: bool, flip: bool) -> tuple[View, ...]:
    """The views of the research modes: ``multiscale`` = the six ratios each also flipped (12 views, as
    ``--multiscale`` of segm/eval/miou.py), ``flip`` alone = scale 1 plain and flipped."""
    if multiscale:
        return tuple(View(ratio, flipped) for ratio in MULTISCALE_RATIOS for flipped in (False, True))
    return (View(1.0, False), View(1.0, True)) if flip else (View(1.0, False),)


def rescaled(size: tuple[int, int], short: int, long: int) -> tuple[int, int]:
    """mmcv ``imrescale`` to fit (long, short) keeping the ratio: scale = min(long / long side, short / short
    side), sides ``int(side * scale + 0.5)``."""
    height, width = size
    scale = min(long / max(height, width), short / min(height, width))
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def enlarged(size: tuple[int, int], window: int) -> tuple[int, int]:
    """The research ``resize(im, window_size)``: a short side below the window is scaled up to it."""
    height, width = size
    if min(height, width) >= window:
        return size
    if height < width:
        return window, int(width / height * window)
    return int(height / width * window), window


def view_plan(size: tuple[int, int], settings: WindowSettings, window: tuple[int, int], view: View) -> WindowPlan:
    """Where the windows of ``view`` of an image of ``size`` lie (``scaled``: the uint8 resize)."""
    scaled = rescaled(size, int(settings.im_size * view.ratio), int(LONG_SIDE_CAP * settings.im_size * view.ratio))
    resized = enlarged(scaled, window[0])
    return WindowPlan(tuple(size), resized, tuple(window), tuple(axis_anchors(resized[0], window[0],
                      settings.window_stride)), tuple(axis_anchors(resized[1], window[1], settings.window_stride)),
                      scaled=scaled, flip=view.flip)


def view_probabilities(image: PendingImage) -> torch.Tensor:
    """Softmax maps ``[C, h, w]`` at the image's size of one view: window logits (``scores`` upsampled to the
    window, or ``logits``) averaged where windows overlap, resized bilinearly to the image, flipped back."""
    plan = image.plan
    with torch.no_grad():
        fields = torch.from_numpy(np.stack(image.fields)).float()
        height, width = plan.resized
        total = torch.zeros(fields.shape[1], height, width)
        count = torch.zeros(1, height, width)
        for window, (row, col) in zip(fields, plan.anchors):
            total[:, row : row + plan.window[0], col : col + plan.window[1]] += upsample(window[None], plan.window)[0]
            count[:, row : row + plan.window[0], col : col + plan.window[1]] += 1
        logits = F.interpolate((total / count)[None], plan.original, mode="bilinear", align_corners=False)[0]
        if plan.flip:
            logits = logits.flip(-1)
        return logits.softmax(dim=0)


@dataclass
class AugmentedSegmentation:
    """One image's labels from its test-time views."""

    labels: np.ndarray  # [h, w] int32
    token_counts: list[list[int]] | None  # per window of every view: tokens after each merge
    windows: int  # windows run for this image, all views together
    token_maps: None = None  # merge pictures are per window of one view: not drawn for test-time views


class ViewAveraging:
    """Labels of photos from the softmax maps of their test-time ``views``, averaged; windows of consecutive
    views and images share batches of ``sliding``."""

    def __init__(self, sliding: SlidingWindow, image_views: tuple[View, ...]):
        self.sliding, self.views = sliding, image_views
        sliding.labels_shortcut = False  # the views need class fields

    def run(self, photos: Iterable[np.ndarray]) -> Iterator[AugmentedSegmentation]:
        """:class:`AugmentedSegmentation` per photo, in order."""
        def plans():
            for photo in photos:
                for view in self.views:
                    yield view_plan(photo.shape[:2], self.sliding.settings, self.sliding.window, view), photo

        outputs = self.sliding.run_plans(plans())
        while True:
            first = next(outputs, None)
            if first is None:
                return
            group = [first] + [next(outputs) for _ in self.views[1:]]
            total = view_probabilities(group[0])
            for image in group[1:]:
                total += view_probabilities(image)
            counts = [c for image in group for c in image.counts] or None
            labels = (total / len(group)).argmax(dim=0).numpy().astype(np.int32)
            yield AugmentedSegmentation(labels, counts, sum(len(image.plan.anchors) for image in group))
