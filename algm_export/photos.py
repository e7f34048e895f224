"""Real photos shipped inside scikit-image, used as sample and verification inputs (no downloads)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import AlgmExportError

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_PIXELS = 64 * 10**6  # larger files are refused before decoding (PIL's bomb check starts at 89 Mpx)


def sample_photo(name: str) -> np.ndarray:
    """One of :data:`SAMPLE_PHOTOS` as an RGB uint8 array ``[H, W, 3]``."""
    from skimage import data

    if name not in SAMPLE_PHOTOS:
        raise AlgmExportError(f"unknown sample photo {name!r} (known: {', '.join(SAMPLE_PHOTOS)})")
    return np.ascontiguousarray(getattr(data, name)()[..., :3])


# Default INT8 calibration photos: other photos shipped with scikit-image, disjoint from SAMPLE_PHOTOS (the
# default verification photos), so that INT8 is verified on images its ranges and mixed precision never saw.
CALIBRATION_PHOTOS = ("motorcycle", "camera", "coins", "immunohistochemistry")


def calibration_photo(name: str) -> np.ndarray:
    """One of :data:`CALIBRATION_PHOTOS` as an RGB uint8 array ``[H, W, 3]`` (grayscale photos repeated)."""
    from skimage import data

    if name not in CALIBRATION_PHOTOS:
        raise AlgmExportError(f"unknown calibration photo {name!r} (known: {', '.join(CALIBRATION_PHOTOS)})")
    photo = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return as_rgb8(photo, name)


def sample_photos() -> dict[str, np.ndarray]:
    """All sample photos by name."""
    return {name: sample_photo(name) for name in SAMPLE_PHOTOS}


class ImageTooLarge(AlgmExportError):
    """An image file above :data:`MAX_PIXELS` (refused before decoding)."""


def as_rgb8(photo: object, what: str = "photo") -> np.ndarray:
    """A photo array as RGB uint8 ``[H, W, 3]``: grayscale ``[H, W]``/``[H, W, 1]``, RGB, RGBA (alpha
    dropped); uint8, uint16 (scaled by 65535, not clipped) or float in [0, 1]. AlgmExportError otherwise."""
    if not isinstance(photo, np.ndarray):
        raise AlgmExportError(f"{what}: expected a numpy array, got {type(photo).__name__}")
    if photo.ndim == 3 and photo.shape[2] in (1, 3, 4):
        photo = photo[..., :3] if photo.shape[2] != 1 else photo[..., 0]
    if photo.ndim not in (2, 3) or min(photo.shape[:2], default=0) < 1:
        raise AlgmExportError(f"{what}: shape {list(photo.shape)} is not an image (expected [H, W], [H, W, 1], "
                              "[H, W, 3] or [H, W, 4])")
    if photo.dtype == np.uint8:
        scaled = photo
    elif photo.dtype == np.uint16:
        scaled = np.round(photo.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    elif photo.dtype in (np.float16, np.float32, np.float64):
        if not np.isfinite(photo).all() or photo.min() < 0 or photo.max() > 1:
            raise AlgmExportError(f"{what}: float pixels must be finite and lie in [0, 1]")
        scaled = np.round(photo.astype(np.float32) * 255.0).astype(np.uint8)
    else:
        raise AlgmExportError(f"{what}: pixels of type {photo.dtype} are not supported (uint8, uint16 or float "
                              "in [0, 1])")
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=2)
    return np.ascontiguousarray(scaled)


def _pixels(image: Image.Image) -> np.ndarray:
    """Decoded pixels of a PIL image with its EXIF orientation applied, 16-bit modes kept 16-bit."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image).astype(np.int64)
        return np.clip(values, 0, 65535).astype(np.uint16)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        return np.clip(values / max(float(values.max()), 1.0), 0.0, 1.0)
    if image.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]`` (EXIF orientation applied; grayscale, palette, RGBA, CMYK and
    16-bit files converted); one-line AlgmExportError when it is not an image or is too large."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(f"{path}: {width}x{height} pixels is larger than the {MAX_PIXELS // 10**6} "
                                      "megapixels this tool reads")
            return as_rgb8(_pixels(image), str(path))
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"{path}: larger than the {MAX_PIXELS // 10**6} megapixels this tool reads") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise AlgmExportError(f"{path}: not a readable image ({type(error).__name__})") from error


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The files of ``folder`` (sorted by name, hidden ones left out); error when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AlgmExportError(f"{folder}: not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise AlgmExportError(f"{folder}: contains no readable images")
    return files


def read_or_skip(path: str | os.PathLike) -> np.ndarray | None:
    """:func:`read_image`, or None after a note on stderr when ``path`` is not a readable image (an image that
    is too large stays an error)."""
    try:
        return read_image(path)
    except ImageTooLarge:
        raise
    except AlgmExportError as error:
        print(f"note: skipping {error}", file=sys.stderr)
        return None


def read_image_folder(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every readable image of ``folder`` (sorted by name); other files are skipped with a note on stderr.
    Error when there is no image, or an image is too large."""
    images = {}
    for path in image_files(folder):
        image = read_or_skip(path)
        if image is not None:
            images[path.name] = image
    if not images:
        raise AlgmExportError(f"{folder}: contains no readable images")
    return images
