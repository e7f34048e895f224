"""The research resize: ``resize_rgb`` (default ``opencv``) against real OpenCV ``cv2.resize`` INTER_LINEAR, bit
for bit, and ``pil`` against PIL."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from algm_export.preprocess import opencv_bilinear, resize_rgb

# (source height, width) -> (target height, width): odd sizes, up and down, one axis only, exact 2x both ways
# (OpenCV takes its area-average shortcut for an exact 2x shrink), 1-pixel sources and targets.
CASES = [((7, 9), (5, 13)), ((45, 82), (110, 80)), ((300, 451), (512, 770)), ((512, 512), (700, 700)),
         ((427, 640), (257, 301)), ((64, 96), (32, 48)), ((33, 17), (66, 34)), ((1, 5), (3, 1)), ((5, 1), (1, 7)),
         ((101, 99), (101, 40)), ((101, 99), (13, 99))]


def reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).reshape(*size, image.shape[2])


@pytest.mark.parametrize("source,target", CASES)
def test_opencv_bilinear_equals_cv2_on_random_pixels(source, target):
    image = np.random.default_rng(sum(source + target)).integers(0, 256, (*source, 3), dtype=np.uint8)
    assert np.array_equal(resize_rgb(image, target), reference(image, target))


def test_opencv_bilinear_equals_cv2_on_photos_and_random_sizes(photos):
    rng = np.random.default_rng(0)
    for photo in photos.values():
        for size in [(512, 683), (1080, 1920), (256, 256)]:
            assert np.array_equal(resize_rgb(photo, size), reference(photo, size))
    for _ in range(200):
        source, target = tuple(rng.integers(1, 90, 2)), tuple(int(v) for v in rng.integers(1, 130, 2))
        image = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
        assert np.array_equal(opencv_bilinear(image, target), reference(image, target)), (source, target)


def test_opencv_differs_from_pil_when_shrinking(photos):
    """The two methods are not the same function: PIL antialiases a shrink (the 87.6 % agreement of issue 20)."""
    photo = photos["astronaut"]
    pil = np.asarray(Image.fromarray(photo).resize((300, 300), Image.BILINEAR))
    assert np.array_equal(resize_rgb(photo, (300, 300), "pil"), pil)
    assert (resize_rgb(photo, (300, 300)) != pil).mean() > 0.1


def test_unknown_method_is_refused(photos):
    with pytest.raises(ValueError, match="unknown resize method"):
        resize_rgb(photos["coffee"], (10, 10), "area")
