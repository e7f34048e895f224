"""Pictures people look at: nothing drawn is cut off at the border, tiny images stay visible."""

from __future__ import annotations

import numpy as np

from algm_export.visualize import MIN_PICTURE_SIDE, merge_picture, overlay

NAMES = tuple(f"class {i}" for i in range(150))


def drawn_to_the_edge(picture: np.ndarray, margin: int = 3) -> bool:
    """Whether anything non-white lies within ``margin`` pixels of the right or bottom border (clipped text)."""
    return bool((picture[:, -margin:] != 255).any() or (picture[-margin:] != 255).any())


def test_merge_picture_of_one_window_keeps_its_whole_key():
    """The colour key is wider than one 512-pixel window: it wraps instead of running off the canvas."""
    panel = np.full((512, 512, 3), 90, np.uint8)
    picture = merge_picture([panel], ["window 1: 1025 -> 700 (CLAP) -> 500 (GBM) tokens"],
                            "ALGM merges: 1 window(s) of 512x512 on the image resized to 512x512")
    assert not drawn_to_the_edge(picture)
    key = picture[512 + 40:]  # below the panel: caption and key rows
    rows_with_ink = np.flatnonzero((key != 255).any(axis=(1, 2)))
    assert rows_with_ink.size and rows_with_ink.max() - rows_with_ink.min() > 40, "caption plus two key rows"


def test_overlay_of_a_tiny_image_is_enlarged_with_the_whole_legend():
    labels = np.array([[0, 0, 1, 1, 1], [2, 2, 2, 2, 2], [3, 3, 3, 3, 3]])
    picture = overlay(np.full((3, 5, 3), 120, np.uint8), labels, NAMES)
    factor = -(-MIN_PICTURE_SIDE // 3)
    assert picture.shape[0] >= MIN_PICTURE_SIDE
    image_part, legend = picture[:, : 5 * factor], picture[:, 5 * factor :]
    assert (image_part[0, 0] != image_part[-1, 0]).any(), "rows of different classes stay apart when enlarged"
    assert (image_part[factor - 1, 0] == image_part[0, 0]).all(), "each pixel becomes a factor x factor block"
    assert not drawn_to_the_edge(legend)
