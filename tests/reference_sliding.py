"""Test-only restatement of Segmenter's sliding-window inference (research code: segm/model/utils.py
``inference``, ``resize``, ``sliding_window``, ``merge_windows``; segm/data: mmseg's keep-ratio rescale),
written independently of ``algm_export.runtime.sliding``. Windows run one at a time (batch 1), logits of
overlapping windows are summed and divided by their count, then resized to the original size.

The uint8 image resize is the one algm-export uses (OpenCV INTER_LINEAR, as mmcv; tests/test_resize.py checks
it against cv2); everything after it is the research code's float arithmetic. The final argmax runs over
chunks of classes so that a 4K image does not need 5 GB.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from algm_export.preprocess import normalize, resize_rgb

CLASS_CHUNK = 16


def rescale_keep_ratio(height: int, width: int, im_size: int) -> tuple[int, int]:
    """mmseg's Resize(img_scale=(4*im_size, im_size), keep_ratio=True)."""
    scale = min(4 * im_size / max(height, width), im_size / min(height, width))
    return int(height * scale + 0.5), int(width * scale + 0.5)


def research_resize(height: int, width: int, smaller_size: int) -> tuple[int, int]:
    """segm's ``resize``: short side up to ``smaller_size`` when smaller."""
    if min(height, width) >= smaller_size:
        return height, width
    if height < width:
        return smaller_size, int(width / height * smaller_size)
    return int(height / width * smaller_size), smaller_size


@torch.no_grad()
def research_sliding_labels(model, photo: np.ndarray, im_size: int, window: int, stride: int) -> np.ndarray:
    """Labels [h, w] of an RGB uint8 ``photo`` by the research procedure with an algm_export Segmenter."""
    size = research_resize(*rescale_keep_ratio(*photo.shape[:2], im_size), window)
    image = torch.from_numpy(normalize(resize_rgb(photo, size), model.config.normalization))[None]
    _, _, height, width = image.shape
    h_anchors = [h for h in range(0, height, stride) if h < height - window] + [height - window]
    w_anchors = [w for w in range(0, width, stride) if w < width - window] + [width - window]
    logit = torch.zeros(model.config.n_cls, height, width)
    count = torch.zeros(1, height, width)
    for ha in h_anchors:
        for wa in w_anchors:
            logit[:, ha : ha + window, wa : wa + window] += model(image[:, :, ha : ha + window, wa : wa + window])[0]
            count[:, ha : ha + window, wa : wa + window] += 1
    logit = (logit / count)[None]
    best = torch.full(photo.shape[:2], -torch.inf)
    labels = torch.zeros(photo.shape[:2], dtype=torch.int64)
    for start in range(0, logit.shape[1], CLASS_CHUNK):
        chunk = F.interpolate(logit[:, start : start + CLASS_CHUNK].contiguous(), photo.shape[:2], mode="bilinear")[0]
        value, index = chunk.max(dim=0)
        better = value > best
        best[better], labels[better] = value[better], index[better] + start
    return labels.numpy().astype(np.int32)
