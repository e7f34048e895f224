"""Colour label maps for viewing."""

from __future__ import annotations

import numpy as np

from .datasets import palette


def colorize(labels: np.ndarray, n_cls: int) -> np.ndarray:
    """Label map ``[H, W]`` -> RGB uint8 ``[H, W, 3]`` with the fixed class palette."""
    return palette(n_cls)[labels]


def side_by_side(photo: np.ndarray, labels: np.ndarray, n_cls: int) -> np.ndarray:
    """The photo and its coloured label map next to each other."""
    return np.concatenate([photo, colorize(labels, n_cls)], axis=1)


CLAP_TINT = np.array([40, 120, 255], np.float32)  # blue: pooled inside a CLAP window
GBM_TINT = np.array([255, 150, 20], np.float32)  # orange: matched across the image by GBM
TINT_ALPHA = 0.45
OVERLAY_ALPHA = 0.55
LEGEND_ROWS = 24
MIN_PICTURE_SIDE = 128  # overlays of smaller images are enlarged to at least this short side


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _legend(entries: list[tuple[np.ndarray, str]], height: int, title: str) -> np.ndarray:
    """A white panel listing colour swatches and names, as tall as ``height``."""
    from PIL import Image, ImageDraw

    line = max(14, min(22, height // (len(entries) + 2)))
    font = _font(line - 4)
    width = 24 + line + max((int(font.getlength(name)) for _, name in entries), default=60)
    width = max(width, int(font.getlength(title)) + 20)
    panel = Image.new("RGB", (width, max(height, line * (len(entries) + 2))), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((10, 6), title, fill="black", font=font)
    for row, (colour, name) in enumerate(entries, start=1):
        top = 6 + row * line
        draw.rectangle([10, top, 10 + line - 4, top + line - 4], fill=tuple(int(c) for c in colour), outline="black")
        draw.text((16 + line, top), name, fill="black", font=font)
    return np.asarray(panel)


def _pad_to_height(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[0] >= height:
        return image
    return np.concatenate([image, np.full((height - image.shape[0], *image.shape[1:]), 255, np.uint8)])


def _enlarged(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` with every pixel repeated ``factor`` times along both axes (nearest neighbour)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def overlay(photo: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """The photo blended with its class colours, and a legend of the classes present (by area). Images whose
    short side is below MIN_PICTURE_SIDE are shown enlarged (nearest neighbour) so that they can be seen beside
    the legend; the shares are those of the image's own pixels."""
    factor = -(-MIN_PICTURE_SIDE // max(1, min(labels.shape)))
    photo, shown_labels = _enlarged(photo, factor), _enlarged(labels, factor)
    colours = palette(len(class_names))
    blended = ((1 - OVERLAY_ALPHA) * photo + OVERLAY_ALPHA * colours[shown_labels]).astype(np.uint8)
    classes, areas = np.unique(labels, return_counts=True)
    order = classes[np.argsort(-areas)]
    shares = dict(zip(classes.tolist(), (100 * areas / labels.size).tolist()))
    entries = [(colours[c], f"{class_names[c]} {shares[c]:.0f}%" if shares[c] >= 1 else f"{class_names[c]} <1%")
               for c in order[:LEGEND_ROWS]]
    if len(order) > LEGEND_ROWS:
        entries.append((np.array([255, 255, 255]), f"... and {len(order) - LEGEND_ROWS} more"))
    legend = _legend(entries, blended.shape[0], "classes present")
    height = max(blended.shape[0], legend.shape[0])
    return np.concatenate([_pad_to_height(blended, height), _pad_to_height(legend, height)], axis=1)


def merge_panel(window: np.ndarray, token_maps: np.ndarray, patch: int) -> np.ndarray:
    """One window (RGB uint8, the model's input) with its ALGM merges: patches pooled by CLAP tinted blue,
    patches merged by GBM (into a token holding patches from several CLAP tokens) tinted orange, and the
    outline of every merged token drawn where it meets another token."""
    grid = (window.shape[0] // patch, window.shape[1] // patch)
    first, last = token_maps[0].reshape(grid), token_maps[-1].reshape(grid)
    clap = np.bincount(first.ravel())[first] > 1
    distinct_firsts = {}
    for token, origin in zip(last.ravel(), first.ravel()):
        distinct_firsts.setdefault(int(token), set()).add(int(origin))
    if len(token_maps) > 1:
        gbm = np.vectorize(lambda t: len(distinct_firsts[int(t)]) > 1)(last)
    else:
        gbm = np.zeros(grid, bool)
    merged = np.bincount(last.ravel())[last] > 1
    tint = np.zeros((*grid, 3), np.float32)
    alpha = np.zeros(grid, np.float32)
    tint[clap], alpha[clap] = CLAP_TINT, TINT_ALPHA
    tint[gbm], alpha[gbm] = GBM_TINT, TINT_ALPHA
    up = lambda a: np.repeat(np.repeat(a, patch, axis=0), patch, axis=1)  # noqa: E731
    picture = (window * (1 - up(alpha)[..., None]) + up(tint) * up(alpha)[..., None]).astype(np.uint8)
    pixels = up(last)
    edge = np.zeros(pixels.shape, bool)
    edge[1:] |= pixels[1:] != pixels[:-1]
    edge[:, 1:] |= pixels[:, 1:] != pixels[:, :-1]
    edge &= up(merged) | np.roll(up(merged), 1, axis=0) | np.roll(up(merged), 1, axis=1)
    picture[edge] = (255, 255, 255)
    return picture


def merge_picture(panels: list[np.ndarray], captions: list[str], title: str) -> np.ndarray:
    """Window panels side by side, each captioned, with a title line and the colour key (its entries wrap onto
    more lines where the panels are narrower than the key)."""
    from PIL import Image, ImageDraw

    gap, line = 8, 20
    font = _font(14)
    key = [(CLAP_TINT, "CLAP: pooled local window"), (GBM_TINT, "GBM: matched across the window"),
           ((255, 255, 255), "outline: one merged token")]
    key_widths = [18 + int(font.getlength(text)) + 2 * gap for _, text in key]
    text_width = max([int(font.getlength(title)), *(int(font.getlength(c)) for c in captions), *key_widths])
    width = max(sum(p.shape[1] for p in panels) + gap * (len(panels) + 1), text_width + 2 * gap)
    key_rows, left = [[]], gap
    for entry, entry_width in zip(key, key_widths):
        if key_rows[-1] and left + entry_width > width:
            key_rows.append([])
            left = gap
        key_rows[-1].append((left, *entry))
        left += entry_width
    height = max(p.shape[0] for p in panels) + (2 + len(key_rows)) * line + 2 * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, 4), title, fill="black", font=font)
    left = gap
    for panel, caption in zip(panels, captions):
        canvas.paste(Image.fromarray(panel), (left, line + gap))
        draw.text((left, line + gap + panel.shape[0] + 4), caption, fill="black", font=font)
        left += panel.shape[1] + gap
    for row, entries in enumerate(key_rows):
        top = height - (len(key_rows) - row) * line
        for x, colour, text in entries:
            draw.rectangle([x, top, x + 12, top + 12], fill=tuple(int(c) for c in colour), outline="black")
            draw.text((x + 18, top - 2), text, fill="black", font=font)
    return np.asarray(canvas)
