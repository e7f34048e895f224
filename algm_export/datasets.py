"""Class names of the datasets Segmenter/ALGM checkpoints are trained on, and a label colour palette."""

from __future__ import annotations

import numpy as np

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)

PASCAL_CONTEXT_CLASSES = (  # the 59 classes of mmseg's PascalContextDataset59 (reduce_zero_label)
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle", "building", "bus",
    "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup", "curtain", "dog", "door", "fence",
    "floor", "flower", "food", "grass", "ground", "horse", "keyboard", "light", "motorbike", "mountain", "mouse",
    "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign", "sky",
    "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall", "water", "window", "wood",
)

KNOWN_CLASSES = {"ade20k": ADE20K_CLASSES, "cityscapes": CITYSCAPES_CLASSES, "pascal_context": PASCAL_CONTEXT_CLASSES}


def class_names_for(dataset: str | None, n_cls: int) -> tuple[str, ...]:
    """Class names of ``dataset`` when it is known and has ``n_cls`` classes, else an empty tuple."""
    names = KNOWN_CLASSES.get(str(dataset or "").lower(), ())
    return names if len(names) == n_cls else ()


def palette(n_cls: int) -> np.ndarray:
    """The PASCAL VOC bit palette, ``[n_cls, 3]`` uint8 (at most 256 classes): bits 0, 1, 2 of the class index
    go to the top bit of R, G, B, bits 3, 4, 5 to the next bit, and so on. The C++ runtime
    (samples/cpp/src/labels.cpp) computes the same colours."""
    if not 0 < n_cls <= 256:
        raise ValueError(f"the palette has 256 colours, asked for {n_cls}")
    colours = np.zeros((n_cls, 3), dtype=np.uint8)
    for index in range(n_cls):
        label = index
        for shift in range(7, -1, -1):
            for channel in range(3):
                colours[index, channel] |= ((label >> channel) & 1) << shift
            label >>= 3
    return colours
