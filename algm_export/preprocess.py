"""Image preprocessing and label postprocessing shared by PyTorch, ONNX Runtime and TensorRT paths."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from .config import Normalization


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an RGB uint8 image to ``size`` = (height, width)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def normalize(image: np.ndarray, normalization: Normalization) -> np.ndarray:
    """RGB uint8 ``[H,W,3]`` -> normalized float32 ``[3,H,W]`` ((pixel/255 - mean) / std)."""
    pixels = image.astype(np.float32) / 255.0
    mean = np.asarray(normalization.mean, dtype=np.float32)
    std = np.asarray(normalization.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def make_batch(images: Sequence[np.ndarray], size: tuple[int, int], normalization: Normalization) -> np.ndarray:
    """Resize and normalize RGB uint8 images into one float32 batch ``[B,3,H,W]``."""
    return np.stack([normalize(resize_rgb(image, size), normalization) for image in images])


def labels_at(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map ``[h,w]`` to ``size`` = (height, width)."""
    if labels.shape == tuple(size):
        return labels
    return np.asarray(Image.fromarray(labels.astype(np.int32)).resize((size[1], size[0]), Image.NEAREST))
