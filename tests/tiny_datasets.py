"""Tiny datasets in the research layouts, built from the bundled photos (no download): small images, one
annotation each, posterized from the photo's colours so that the classes follow the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from algm_export.preprocess import resize_rgb

SIZES = {"astronaut": (72, 72), "chelsea": (60, 90), "coffee": (80, 120), "rocket": (96, 64)}


def small_photos(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four photos at :data:`SIZES` (odd aspect ratios, some below the window)."""
    return {name: resize_rgb(photos[name], size) for name, size in SIZES.items()}


def posterize(photo: np.ndarray, levels: int) -> np.ndarray:
    """Class index per pixel in [0, levels): coarse colour bins."""
    bins = (photo[..., 0] // 64) * 16 + (photo[..., 1] // 64) * 4 + photo[..., 2] // 64
    return (bins.astype(np.int64) * 7) % levels


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def ade20k(root: Path, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ROOT/ADEChallengeData2016/{images,annotations}/validation; returns the raw annotations by stem
    (0 = other, 1..150 = classes)."""
    base = root / "ADEChallengeData2016"
    labels = {}
    for index, (name, photo) in enumerate(small_photos(photos).items()):
        stem = f"ADE_val_{index:08d}"
        save(base / "images" / "validation" / f"{stem}.jpg", photo)
        labels[stem] = posterize(photo, 151).astype(np.uint8)
        save(base / "annotations" / "validation" / f"{stem}.png", labels[stem])
    return labels


def cityscapes(root: Path, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """leftImg8bit/val/<city> + gtFine/val/<city>: trainIds for one city, labelIds for the other."""
    labels = {}
    for index, (name, photo) in enumerate(small_photos(photos).items()):
        city = "aachen" if index < 2 else "bonn"
        stem = f"{city}_{index:06d}_000019"
        save(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", photo)
        ids = posterize(photo, 34).astype(np.uint8)
        kind = "labelTrainIds" if city == "aachen" else "labelIds"
        labels[stem] = ids
        save(root / "gtFine" / "val" / city / f"{stem}_gtFine_{kind}.png", ids)
    return labels


def pascal_context(root: Path, photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext} + ImageSets/SegmentationContext/val.txt (three of
    the four images listed)."""
    base = root / "VOCdevkit" / "VOC2010"
    labels = {}
    for index, (name, photo) in enumerate(small_photos(photos).items()):
        stem = f"2008_{index:06d}"
        save(base / "JPEGImages" / f"{stem}.jpg", photo)
        labels[stem] = posterize(photo, 60).astype(np.uint8)
        save(base / "SegmentationClassContext" / f"{stem}.png", labels[stem])
    listing = base / "ImageSets" / "SegmentationContext" / "val.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{stem}\n" for stem in list(labels)[:3]))
    return {stem: labels[stem] for stem in list(labels)[:3]}


def folder(root: Path, photos: dict[str, np.ndarray], n_cls: int = 150) -> dict[str, np.ndarray]:
    """ROOT/images/<name>.png + ROOT/annotations/<name>.png (class indices, some 255)."""
    labels = {}
    for name, photo in small_photos(photos).items():
        save(root / "images" / f"{name}.png", photo)
        label = posterize(photo, n_cls).astype(np.uint8)
        label[:4, :4] = 255
        labels[name] = label
        save(root / "annotations" / f"{name}.png", label)
    return labels
