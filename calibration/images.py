"""Calibration images and the ONNX Runtime data reader that feeds them through the inference preprocessing."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from algm_export.deployment import DeploymentInfo
from algm_export.errors import AlgmExportError
from algm_export.photos import CALIBRATION_PHOTOS, calibration_photo, image_files, read_image, read_or_skip
from algm_export.preprocess import make_batch

BUNDLED = "the bundled calibration photos"
DEPLOYMENT_NOTE = ("calibrating on the {count} bundled calibration photos (scikit-image's, not the verification "
                   "photos): a deployment should calibrate on a few hundred of its own images (--calib-images DIR)")


@dataclass(frozen=True)
class CalibrationImages:
    """Which images calibrate: files of a folder, or the bundled photos (``files`` is None); read lazily."""

    names: tuple[str, ...]
    files: tuple[Path, ...] | None
    source: str

    @classmethod
    def select(cls, folder: Path | None, count: int | None) -> "CalibrationImages":
        """The files of ``folder`` (sorted by name; not read yet: :meth:`readable` keeps the images among them),
        or the first ``count`` (all when None) bundled calibration photos (disjoint from the sample photos that
        verify by default)."""
        if count is not None and count < 1:
            raise AlgmExportError(f"--calib-count must be >= 1, got {count}")
        if folder is None:
            return cls(CALIBRATION_PHOTOS[:count], None, BUNDLED)
        files = tuple(image_files(folder))
        return cls(tuple(p.name for p in files), files, str(folder))

    @property
    def bundled(self) -> bool:
        """True for the bundled calibration photos."""
        return self.files is None

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as RGB uint8 (one-line AlgmExportError when a file is not an image)."""
        return calibration_photo(self.names[index]) if self.files is None else read_image(self.files[index])

    def readable(self, count: int | None = None) -> "CalibrationImages":
        """The first ``count`` (all when None) files that read as images, each read once before anything is
        written. Other files are skipped with a note on stderr, as for ``--images``; a note says when fewer
        than ``count`` are left; error when none is (or an image is too large)."""
        kept = []
        for index in range(len(self.names)):
            if count is not None and len(kept) == count:
                break
            if self.files is None or read_or_skip(self.files[index]) is not None:  # bundled photos always read
                kept.append(index)
        if not kept:
            raise AlgmExportError(f"{self.source}: contains no readable images")
        if count is not None and len(kept) < count:
            print(f"note: --calib-count {count}: {self.source} has {len(kept)} readable images", file=sys.stderr)
        files = None if self.files is None else tuple(self.files[index] for index in kept)
        return CalibrationImages(tuple(self.names[index] for index in kept), files, self.source)

    def disjoint_from(self, photos: dict[str, np.ndarray]) -> bool:
        """Whether no calibration image has the pixels of one of ``photos`` (the verification images)."""
        seen = {pixel_digest(photo) for photo in photos.values()}
        return not any(pixel_digest(self.read(index)) in seen for index in range(len(self.names)))

    def digest(self) -> str:
        """SHA-256 over the names and contents (file bytes, or pixels of the bundled photos)."""
        digest = hashlib.sha256()
        for index, name in enumerate(self.names):
            digest.update(name.encode() + b"\0")
            digest.update(self.read(index).tobytes() if self.files is None else self.files[index].read_bytes())
        return digest.hexdigest()


def pixel_digest(photo: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixels."""
    return hashlib.sha256(str(photo.shape).encode() + np.ascontiguousarray(photo).tobytes()).hexdigest()


def calibration_batches(images: CalibrationImages, info: DeploymentInfo) -> Iterator[np.ndarray]:
    """Each image preprocessed as at inference (resize to the graph's size, normalize): ``[1, 3, H, W]``."""
    for index in range(len(images.names)):
        yield make_batch([images.read(index)], info.image_size, info.normalization)


class ImageReader(CalibrationDataReader):
    """ONNX Runtime calibration data reader over :func:`calibration_batches`."""

    def __init__(self, images: CalibrationImages, info: DeploymentInfo, input_name: str):
        self.batches, self.input_name = calibration_batches(images, info), input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next feed dict, None at the end."""
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}
