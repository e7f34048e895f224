"""Labelled datasets in the research code's layouts (segm/data/config), read one image at a time.

- ``ade20k``: ``ROOT[/ADEChallengeData2016]/images/<split>/*.jpg`` + ``annotations/<split>/<stem>.png``; 150 classes,
  ``reduce_zero_label`` (0 "other" -> ignored, the rest minus 1).
- ``cityscapes``: ``ROOT/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/<split>/<city>/
  *_gtFine_labelTrainIds.png`` (19 trainIds, 255 ignored), or ``*_gtFine_labelIds.png`` mapped to trainIds.
- ``pascal_context``: ``ROOT[/VOCdevkit/VOC2010]/JPEGImages/<id>.jpg`` + ``SegmentationClassContext/<id>.png``
  for the ids of ``ImageSets/SegmentationContext/<split>.txt``; 59 classes, ``reduce_zero_label``.
- ``folder``: ``ROOT/images/*`` + ``ROOT/annotations/<stem>.png`` holding class indices (255 ignored).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from ..datasets import ADE20K_CLASSES, CITYSCAPES_CLASSES, PASCAL_CONTEXT_CLASSES
from ..errors import AlgmExportError
from ..photos import IMAGE_SUFFIXES, read_or_skip
from .metrics import IGNORE_INDEX

DATASETS = ("ade20k", "cityscapes", "pascal_context", "folder")
DEFAULT_SPLITS = {"ade20k": "validation", "cityscapes": "val", "pascal_context": "val", "folder": ""}

# Cityscapes labelIds -> trainIds (cityscapesScripts labels.py); every other id is ignored.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """mmseg's ``reduce_zero_label``: 0 becomes the ignore index, every other value is decreased by 1
    (255 stays 255)."""
    reduced = label.astype(np.int64) - 1
    reduced[label == 0] = IGNORE_INDEX
    reduced[label == IGNORE_INDEX] = IGNORE_INDEX
    return reduced


def cityscapes_train_ids(label: np.ndarray) -> np.ndarray:
    """Cityscapes labelIds -> trainIds (unlisted ids -> 255)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        table[label_id] = train_id
    return table[np.clip(label.astype(np.int64), 0, 255)]


@dataclass(frozen=True)
class Sample:
    """One image and its annotation file (None: unlabelled) with the transform its values need."""

    image: Path
    annotation: Path | None
    transform: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def name(self) -> str:
        return self.image.stem


@dataclass(frozen=True)
class Dataset:
    """The samples of one split, in a stable order, and the classes they are scored on."""

    kind: str
    root: Path
    samples: tuple[Sample, ...]
    class_names: tuple[str, ...]

    def read(self, limit: int | None = None) -> Iterator[tuple[Sample, np.ndarray, np.ndarray | None]]:
        """(sample, RGB uint8 image, label ``[h, w]`` int64 or None) one at a time. An unreadable image or
        annotation is skipped with a note on stderr (and counted in :attr:`skipped`); an annotation whose size
        differs from its image's is an error naming the file."""
        delivered = 0
        for sample in self.samples:
            if limit is not None and delivered >= limit:
                return
            image = read_or_skip(sample.image)
            if image is None:
                self.skipped.append(str(sample.image))
                continue
            label = None
            if sample.annotation is not None:
                label = read_label(sample.annotation)
                if label is None:
                    self.skipped.append(str(sample.annotation))
                    continue
                if label.shape != image.shape[:2]:
                    raise _mismatch(sample, label.shape[::-1], image.shape[1::-1])
                if sample.transform is not None:
                    label = sample.transform(label)
            delivered += 1
            yield sample, image, label

    def check_sizes(self, limit: int | None = None) -> None:
        """Compare every annotation's size with its image's from the file headers (nothing decoded), so that a
        mismatch is an error before any model runs; files that cannot be opened are left to :meth:`read`."""
        for sample in self.samples[:limit]:
            if sample.annotation is None:
                continue
            image, label = _header_size(sample.image, oriented=True), _header_size(sample.annotation)
            if image is not None and label is not None and image != label:
                raise _mismatch(sample, label, image)

    @property
    def skipped(self) -> list[str]:
        """Files skipped so far as unreadable (shared by every pass over the dataset)."""
        return self._skipped

    def __post_init__(self) -> None:
        object.__setattr__(self, "_skipped", [])


def _mismatch(sample: Sample, label: tuple[int, int], image: tuple[int, int]) -> AlgmExportError:
    """The error for an annotation of ``label`` = (width, height) beside an image of ``image``."""
    return AlgmExportError(f"{sample.annotation}: annotation is {label[0]}x{label[1]}, its image {sample.image.name} "
                           f"is {image[0]}x{image[1]}")


EXIF_ORIENTATION = 0x0112
TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height (read_image applies them)


def _header_size(path: Path, oriented: bool = False) -> tuple[int, int] | None:
    """(width, height) from the file header (EXIF orientation applied with ``oriented``), None if unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if oriented and image.getexif().get(EXIF_ORIENTATION) in TRANSPOSED:
                width, height = height, width
            return width, height
    except (OSError, ValueError, SyntaxError):
        return None


def read_label(path: Path) -> np.ndarray | None:
    """A single-channel annotation PNG as int64 ``[h, w]``; None after a note when it cannot be read."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise ValueError(f"mode {image.mode}, expected one channel of class indices")
            return np.asarray(image).astype(np.int64)
    except (OSError, ValueError, SyntaxError) as error:
        print(f"note: skipping {path}: not a readable annotation ({error})", file=sys.stderr)
        return None


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise AlgmExportError(f"{path}: no such folder ({what})")
    return path


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in suffixes)


def _nonempty(kind: str, root: Path, samples: list[Sample], where: Path) -> tuple[Sample, ...]:
    if not samples:
        raise AlgmExportError(f"{where}: no {kind} images found (see algm-export eval --help for the layout)")
    return tuple(samples)


def _annotation(path: Path) -> Path:
    if not path.is_file():
        raise AlgmExportError(f"{path}: annotation missing for its image")
    return path


def ade20k(root: Path, split: str) -> Dataset:
    """``[ROOT/ADEChallengeData2016]/images/<split>`` + ``annotations/<split>``."""
    base = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
    images = _folder(base / "images" / split, "ADE20K images/<split>")
    annotations = _folder(base / "annotations" / split, "ADE20K annotations/<split>")
    samples = [Sample(p, _annotation(annotations / f"{p.stem}.png"), reduce_zero_label)
               for p in _files(images, IMAGE_SUFFIXES)]
    return Dataset("ade20k", root, _nonempty("ADE20K", root, samples, images), ADE20K_CLASSES)


def cityscapes(root: Path, split: str) -> Dataset:
    """``leftImg8bit/<split>/<city>`` + ``gtFine/<split>/<city>`` (trainIds, or labelIds mapped)."""
    images = _folder(root / "leftImg8bit" / split, "Cityscapes leftImg8bit/<split>")
    annotations = _folder(root / "gtFine" / split, "Cityscapes gtFine/<split>")
    samples = []
    for city in sorted(p for p in images.iterdir() if p.is_dir()):
        for image in sorted(city.glob("*_leftImg8bit.png")):
            stem = image.name.removesuffix("_leftImg8bit.png")
            train_ids = annotations / city.name / f"{stem}_gtFine_labelTrainIds.png"
            label_ids = annotations / city.name / f"{stem}_gtFine_labelIds.png"
            if train_ids.is_file():
                samples.append(Sample(image, train_ids))
            elif label_ids.is_file():
                samples.append(Sample(image, label_ids, cityscapes_train_ids))
            else:
                raise AlgmExportError(f"{train_ids}: annotation missing for its image (nor is there {label_ids.name})")
    return Dataset("cityscapes", root, _nonempty("Cityscapes", root, samples, images), CITYSCAPES_CLASSES)


def pascal_context(root: Path, split: str) -> Dataset:
    """``[ROOT/VOCdevkit/VOC2010]/JPEGImages`` + ``SegmentationClassContext`` for the ids of
    ``ImageSets/SegmentationContext/<split>.txt``."""
    base = root / "VOCdevkit" / "VOC2010" if (root / "VOCdevkit" / "VOC2010").is_dir() else root
    ids = base / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    if not ids.is_file():
        raise AlgmExportError(f"{ids}: no such file (Pascal-Context split list)")
    images = _folder(base / "JPEGImages", "Pascal-Context JPEGImages")
    annotations = _folder(base / "SegmentationClassContext", "Pascal-Context SegmentationClassContext")
    samples = []
    for name in ids.read_text().split():
        image = images / f"{name}.jpg"
        if not image.is_file():
            raise AlgmExportError(f"{image}: listed in {ids.name} but missing")
        samples.append(Sample(image, _annotation(annotations / f"{name}.png"), reduce_zero_label))
    return Dataset("pascal_context", root, _nonempty("Pascal-Context", root, samples, ids), PASCAL_CONTEXT_CLASSES)


def folder(root: Path, split: str, labelled: bool = True) -> Dataset:
    """``ROOT/images`` + ``ROOT/annotations/<stem>.png`` (class indices); unlabelled: the images of ``ROOT/images``
    or of ``ROOT`` itself."""
    if labelled:
        images = _folder(root / "images", "folder dataset: images/")
        annotations = _folder(root / "annotations", "folder dataset: annotations/")
        samples = [Sample(p, _annotation(annotations / f"{p.stem}.png")) for p in _files(images, IMAGE_SUFFIXES)]
    else:
        images = root / "images" if (root / "images").is_dir() else _folder(root, "images")
        samples = [Sample(p, None) for p in _files(images, IMAGE_SUFFIXES)]
    return Dataset("folder", root, _nonempty("image", root, samples, images), ())


READERS = {"ade20k": ade20k, "cityscapes": cityscapes, "pascal_context": pascal_context, "folder": folder}


def open_dataset(root: Path, kind: str, split: str | None = None, labelled: bool = True) -> Dataset:
    """The dataset of layout ``kind`` under ``root`` (``split`` default: the research config's); unlabelled
    (``--reference pytorch``): only its images. One-line AlgmExportError for a missing or unknown layout."""
    if kind not in READERS:
        raise AlgmExportError(f"--dataset {kind!r}: unknown layout (known: {', '.join(DATASETS)})")
    if not root.is_dir():
        raise AlgmExportError(f"{root}: no such folder (--data)")
    split = DEFAULT_SPLITS[kind] if split is None else split
    if not labelled:
        dataset = READERS[kind](root, split) if kind != "folder" else folder(root, split, labelled=False)
        return Dataset(dataset.kind, root, tuple(Sample(s.image, None) for s in dataset.samples), dataset.class_names)
    return READERS[kind](root, split)
