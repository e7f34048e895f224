"""PyTorch eager execution behind the backend interface (the reference for parity and speed)."""

from __future__ import annotations

import numpy as np
import torch

from ..deployment import DeploymentInfo
from ..models.segmenter import Segmenter
from .base import Backend, Prediction


class TorchBackend(Backend):
    """``model`` run eagerly in float32 on ``device`` (the model must already live there); every output."""

    def __init__(self, model: Segmenter, image_size: tuple[int, int], name: str = "pytorch", device: str = "cpu"):
        self.model = model.eval()
        self.info = DeploymentInfo.of(model, image_size)
        self.name = name
        self.device = device

    def _run(self, images: np.ndarray, outputs: tuple[str, ...], replay_maps: np.ndarray | None = None,
             merge_inputs: list[torch.Tensor] | None = None) -> Prediction:
        with torch.no_grad():
            replay = torch.from_numpy(replay_maps).to(self.device) if replay_maps is not None else None
            result = self.model.outputs(torch.from_numpy(images).to(self.device), outputs, replay_maps=replay,
                                        merge_inputs=merge_inputs)
            arrays = {name: value.cpu().numpy() for name, value in result.items()}
        maps, counts = self.model.token_maps, self.model.token_counts
        return Prediction(arrays, counts.cpu().numpy() if counts is not None else None,
                          maps.cpu().numpy() if maps is not None else None)

    def replay(self, images: np.ndarray, token_maps: np.ndarray, outputs: tuple[str, ...] | None = None,
               merge_inputs: list[torch.Tensor] | None = None) -> Prediction:
        """Run with the merge decisions of another backend (its ``token_maps`` output), returning ``outputs``
        (default: all); ``merge_inputs`` receives the tokens each merge started from."""
        return self._run(np.ascontiguousarray(images, dtype=np.float32), tuple(outputs or self.info.outputs),
                         token_maps, merge_inputs)
