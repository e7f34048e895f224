"""The window model seen through a server: a :class:`Backend` whose batches run elsewhere (Triton BLS in
the repository's whole-image model, a gRPC client in ``algm-export serve``), so that the sliding window,
averaging and resizing stay our runtime code while windows of concurrent requests batch on the server."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..artifacts import TOKEN_COUNTS, TOKEN_MAPS
from ..deployment import DeploymentInfo
from ..runtime.base import Backend, Prediction
from ..runtime.sliding import Segmentation

Infer = Callable[[np.ndarray, Sequence[str]], dict[str, np.ndarray]]


class RemoteWindows(Backend):
    """Runs window batches ``[B, 3, H, W]`` with ``infer(images, output_names) -> {name: array}``."""

    def __init__(self, info: DeploymentInfo, infer: Infer, name: str = "triton",
                 with_tokens: bool = True):
        self.info, self.name, self._infer = info, name, infer
        self.token_outputs = (TOKEN_COUNTS, TOKEN_MAPS) if with_tokens and info.algm is not None else ()

    def _run(self, images: np.ndarray, outputs: tuple[str, ...]) -> Prediction:
        results = self._infer(images, [*outputs, *self.token_outputs])
        return Prediction({name: results[name] for name in outputs}, results.get(TOKEN_COUNTS),
                          results.get(TOKEN_MAPS))


def token_count_array(result: Segmentation) -> np.ndarray:
    """``[windows, merges]`` int64: each window's tokens after each merge (``[windows, 0]`` for a dense model)."""
    if not result.token_counts:
        return np.zeros((len(result.plan.anchors), 0), dtype=np.int64)
    return np.asarray(result.token_counts, dtype=np.int64)
