"""What a whole-image request may carry, checked before any work: an RGB/grayscale uint8 array of any size
or the bytes of an encoded image (PNG, JPEG, ...) as uint8. Every refusal names the problem in one line."""

from __future__ import annotations

import io

import numpy as np

from ..errors import AlgmExportError

MAX_SERVED_PIXELS = 40 * 10**6  # a request above this is refused before decoding (a 4K frame is 8.3 Mpx)


def photo_from_array(image: np.ndarray, max_pixels: int = MAX_SERVED_PIXELS) -> np.ndarray:
    """A request's ``image`` ``[H, W, 3]`` (or ``[H, W]``) uint8 as a contiguous RGB uint8 array."""
    if image.dtype != np.uint8:
        raise AlgmExportError(f"image: pixels of type {image.dtype}; expected uint8 [H, W, 3]")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise AlgmExportError(f"image: shape {list(image.shape)}; expected [H, W, 3] (RGB) or [H, W]")
    return _checked_size(np.ascontiguousarray(image), max_pixels)


def photo_from_bytes(data: bytes, max_pixels: int = MAX_SERVED_PIXELS) -> np.ndarray:
    """A request's ``encoded`` image bytes (any format PIL reads) decoded to RGB uint8."""
    from PIL import Image, UnidentifiedImageError

    from ..photos import _pixels, as_rgb8

    if not data:
        raise AlgmExportError("encoded: empty; expected the bytes of a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            if width * height > max_pixels:
                raise AlgmExportError(f"encoded: {width}x{height} pixels is above the limit of {max_pixels} pixels")
            return _checked_size(as_rgb8(_pixels(picture), "encoded"), max_pixels)
    except Image.DecompressionBombError as error:
        raise AlgmExportError(f"encoded: above the limit of {max_pixels} pixels") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise AlgmExportError(f"encoded: not a readable image ({len(data)} bytes; {type(error).__name__})") \
            from error


def _checked_size(photo: np.ndarray, max_pixels: int) -> np.ndarray:
    height, width = photo.shape[:2]
    if height < 1 or width < 1:
        raise AlgmExportError(f"image: {height}x{width} pixels is empty")
    if height * width > max_pixels:
        raise AlgmExportError(f"image: {height}x{width} pixels is above the limit of {max_pixels} pixels")
    return photo


def request_photo(image: np.ndarray | None, encoded: np.ndarray | None,
                  max_pixels: int = MAX_SERVED_PIXELS) -> np.ndarray:
    """The photo of a whole-image request: exactly one of ``image`` (uint8 ``[H, W, 3]``) and ``encoded`` (the
    bytes of an image file as a uint8 vector: raw bytes avoid the BYTES tensor's length-prefixed framing)."""
    if (image is None) == (encoded is None):
        raise AlgmExportError("send exactly one of the inputs image (uint8 [H, W, 3]) and encoded (the bytes of a "
                              "PNG/JPEG file as uint8 [N])")
    if image is not None:
        return photo_from_array(image, max_pixels)
    if encoded.dtype != np.uint8 or encoded.ndim != 1:
        raise AlgmExportError(f"encoded: {encoded.dtype} of shape {list(encoded.shape)}; expected the file's bytes "
                              "as uint8 [N]")
    return photo_from_bytes(encoded.tobytes(), max_pixels)
