"""Image preprocessing and label postprocessing shared by PyTorch, ONNX Runtime and TensorRT paths."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from .config import Normalization

OPENCV = "opencv"  # the research resize (mmcv.imresize: cv2.resize INTER_LINEAR), the default
PIL = "pil"  # PIL's BILINEAR: antialiased when shrinking
RESIZE_METHODS = (OPENCV, PIL)
COEFFICIENT_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: bilinear weights are integers summing to 2048


def resize_rgb(image: np.ndarray, size: tuple[int, int], method: str = OPENCV) -> np.ndarray:
    """Bilinear resize of an RGB uint8 image ``[h, w, 3]`` to ``size`` = (height, width).

    ``opencv`` (default) is what the research data pipeline does (mmcv ``imresize``: ``cv2.resize`` with
    ``INTER_LINEAR``): half-pixel centres, no antialiasing, computed bit for bit as OpenCV does on uint8 (see
    :func:`opencv_bilinear`). ``pil`` is PIL's ``Image.BILINEAR``, whose filter widens when shrinking.
    """
    if image.shape[:2] == tuple(size):
        return image
    if method == OPENCV:
        return opencv_bilinear(image, size)
    if method == PIL:
        return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
    raise ValueError(f"unknown resize method {method!r} (known: {', '.join(RESIZE_METHODS)})")


def _opencv_taps(size_in: int, size_out: int, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR taps along one axis: two source indices and two fixed-point weights per output.

    The source position ``(i + 0.5) * scale - 0.5`` is rounded to float32 and split into its floor and
    fraction; each weight is ``round(w * 2048)``. Along x (``clamp``) a position left of the first pixel or on/after
    the last one takes that pixel alone; along y OpenCV keeps the fraction and only clips the row indices, so
    a border row is one row weighted twice.
    """
    scale = 1.0 / (size_out / size_in)  # OpenCV: 1 / inv_scale, in double
    position = ((np.arange(size_out, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(position).astype(np.int64)
    fraction = (position - first.astype(np.float32)).astype(np.float32)
    if clamp:
        outside = (first < 0) | (first >= size_in - 1)
        fraction[outside] = 0
        first = np.clip(first, 0, size_in - 1)
    one = np.float32(1 << COEFFICIENT_BITS)
    weight0 = np.rint((np.float32(1) - fraction) * one).astype(np.int32)
    weight1 = np.rint(fraction * one).astype(np.int32)
    return np.clip(first, 0, size_in - 1), np.clip(first + 1, 0, size_in - 1), weight0, weight1


def opencv_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)`` on uint8 ``[h, w, C]``, bit for
    bit, without OpenCV: a horizontal pass in integers (weights x 2048), then OpenCV's vertical pass
    ``((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2``. (OpenCV takes an area-average shortcut
    for an exact 2x shrink; it gives the same pixels: every weight is 1024.)"""
    height, width = size
    rows0, rows1, beta0, beta1 = _opencv_taps(image.shape[0], height, clamp=False)
    cols0, cols1, alpha0, alpha1 = _opencv_taps(image.shape[1], width, clamp=True)
    alpha0, alpha1 = alpha0[:, None], alpha1[:, None]
    needed, where = np.unique(np.concatenate([rows0, rows1]), return_inverse=True)
    source = image[needed].astype(np.int32)
    horizontal = (source[:, cols0] * alpha0 + source[:, cols1] * alpha1) >> 4
    top, bottom = horizontal[where[:height]], horizontal[where[height:]]
    result = (((beta0[:, None, None] * top) >> 16) + ((beta1[:, None, None] * bottom) >> 16) + 2) >> 2
    return np.clip(result, 0, 255).astype(np.uint8)


def normalize(image: np.ndarray, normalization: Normalization) -> np.ndarray:
    """RGB uint8 ``[H,W,3]`` -> normalized float32 ``[3,H,W]`` ((pixel/255 - mean) / std)."""
    pixels = image.astype(np.float32) / 255.0
    mean = np.asarray(normalization.mean, dtype=np.float32)
    std = np.asarray(normalization.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def make_batch(images: Sequence[np.ndarray], size: tuple[int, int], normalization: Normalization,
               method: str = OPENCV) -> np.ndarray:
    """Resize (:func:`resize_rgb` ``method``) and normalize RGB uint8 images into one float32 batch ``[B,3,H,W]``."""
    return np.stack([normalize(resize_rgb(image, size, method), normalization) for image in images])


def labels_at(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map ``[h,w]`` to ``size`` = (height, width)."""
    if labels.shape == tuple(size):
        return labels
    return np.asarray(Image.fromarray(labels.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST))
