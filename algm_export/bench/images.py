"""The bench's images: the verification photos and, by default, flat ones, so that batches mix token counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..photos import as_rgb8
from ..pipeline import verification_photos


def flat_photos() -> dict[str, np.ndarray]:
    """Flat images shipped with scikit-image: sky (the top left of ``rocket``) and the moon's surface. They merge
    far more than the sample photos (ViT-S/16 sample at 512x512: 159 and 191 tokens after the last merge against
    261-569 for the photos), so a batch of both spreads its token counts more than 3:1."""
    from skimage import data

    return {"sky": np.ascontiguousarray(data.rocket()[:200, :300]), "moon": as_rgb8(data.moon(), "moon")}


def bench_photos(images: Path | None) -> dict[str, np.ndarray]:
    """The user's images, or the bundled sample photos followed by :func:`flat_photos`."""
    return verification_photos(images) if images is not None else {**verification_photos(None), **flat_photos()}
