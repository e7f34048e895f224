"""Real photos shipped inside scikit-image, used as sample and verification inputs (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import AlgmExportError

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def sample_photo(name: str) -> np.ndarray:
    """One of :data:`SAMPLE_PHOTOS` as an RGB uint8 array ``[H, W, 3]``."""
    from skimage import data

    if name not in SAMPLE_PHOTOS:
        raise AlgmExportError(f"unknown sample photo {name!r} (known: {', '.join(SAMPLE_PHOTOS)})")
    return np.ascontiguousarray(getattr(data, name)()[..., :3])


def sample_photos() -> dict[str, np.ndarray]:
    """All sample photos by name."""
    return {name: sample_photo(name) for name in SAMPLE_PHOTOS}


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]``; one-line AlgmExportError when it is not an image."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit grayscale: keep the top 8 bits
                gray = (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise AlgmExportError(f"{path}: not a readable image ({type(error).__name__})") from error


def read_image_folder(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every image file of ``folder`` (sorted by name); error when there is none or one is unreadable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AlgmExportError(f"{folder}: not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AlgmExportError(f"{folder}: contains no files")
    return {p.name: read_image(p) for p in files}
