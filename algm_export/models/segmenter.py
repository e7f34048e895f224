"""Segmenter (ViT encoder + decoder) with optional ALGM token merging."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..artifacts import LABELS, LOGITS, SCORES
from ..config import ALGMConfig, SegmenterConfig
from ..merging.ops import unmerge
from ..outputs import argmax_labels, upsample
from . import encoder
from .decoders import build_decoder
from .encoder import build_vit, encode


class Segmenter(nn.Module):
    """``model(images)``: normalized ``[B,3,H,W]`` float -> logits ``[B,n_cls,H,W]``.

    Images are zero-padded to a multiple of the patch size and the logits cropped back. With ALGM the
    decoder runs on the merged tokens and its outputs are spread back onto the patch grid (unmerge)
    before the bilinear upsampling. After each forward call, ``token_counts`` holds each image's token count
    (class token included) after each merge ``[B, merges]`` int64 and ``token_maps`` the patch->token maps
    ``[B, merges, N]`` int32 (both None without ALGM).
    """

    def __init__(self, config: SegmenterConfig, algm: ALGMConfig | None = None):
        super().__init__()
        if algm is not None:
            algm.validate(config.n_layers, config.grid)
        self.config = config
        self.algm = algm
        self.encoder = build_vit(config)
        self.decoder = build_decoder(config)
        self.token_counts: torch.Tensor | None = None
        self.token_maps: torch.Tensor | None = None

    @property
    def mean(self) -> tuple[float, float, float]:
        """Per-channel mean the model expects (images in [0, 1] before normalization)."""
        return self.config.normalization.mean

    @property
    def std(self) -> tuple[float, float, float]:
        """Per-channel std the model expects."""
        return self.config.normalization.std

    def set_algm(self, algm: ALGMConfig | None) -> None:
        """Switch merging on (with ``algm``) or off (None) without touching the weights."""
        if algm is not None:
            algm.validate(self.config.n_layers, self.config.grid)
        self.algm = algm

    def patch_scores(self, images: torch.Tensor, replay_maps: torch.Tensor | None = None,
                     merge_inputs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Class scores on the patch grid ``[B, n_cls, h, w]`` of the images zero-padded to a multiple of the
        patch size (a channels-last view of the decoder's per-patch output: no copy).

        ``replay_maps`` (``[B, merges, N]`` int, e.g. an exported graph's ``token_maps`` output) replaces the
        merge decisions, to compare another backend's arithmetic with PyTorch's under the same merges.
        ``merge_inputs``, when given, receives the tokens each merge starts from (see :func:`encode`).
        """
        patch = self.config.patch_size
        padded = F.pad(images, (0, -images.shape[3] % patch, 0, -images.shape[2] % patch))
        grid = (padded.shape[2] // patch, padded.shape[3] // patch)
        tokens, maps, counts, valid = encode(self.encoder, padded, self.config.grid, self.algm, replay_maps,
                                             merge_inputs)
        prefix = self.encoder.num_prefix_tokens
        real = valid[:, prefix:] if maps and self.algm.per_image else None  # None: no padding
        scores = self.decoder(tokens[:, prefix:], real, encoder.PACK_TOKENS)
        if maps:
            scores = unmerge(scores, maps[-1])
        if not torch.compiler.is_exporting():
            self.token_counts = torch.stack(counts, dim=1) if maps else None
            self.token_maps = torch.stack(maps, dim=1) if maps else None
        return scores.reshape(images.shape[0], grid[0], grid[1], self.config.n_cls).permute(0, 3, 1, 2)

    def forward(self, images: torch.Tensor, replay_maps: torch.Tensor | None = None,
                merge_inputs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits ``[B, n_cls, H, W]`` at the input resolution (channels-last memory; see :meth:`patch_scores`)."""
        return self.outputs(images, (LOGITS,), replay_maps, merge_inputs)[LOGITS]

    def outputs(self, images: torch.Tensor, names: tuple[str, ...], replay_maps: torch.Tensor | None = None,
                merge_inputs: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The deployment outputs ``names`` (``labels``, ``scores``, ``logits``: docs/outputs.md) of ``images``
        (``replay_maps`` and ``merge_inputs``: see :meth:`patch_scores`)."""
        height, width = images.shape[2], images.shape[3]
        scores = self.patch_scores(images, replay_maps, merge_inputs)
        patch = self.config.patch_size
        result = {SCORES: scores}
        if LOGITS in names or LABELS in names:
            padded = (scores.shape[2] * patch, scores.shape[3] * patch)
            result[LOGITS] = upsample(scores, padded)[:, :, :height, :width]
            result[LABELS] = argmax_labels(result[LOGITS])
        return {name: result[name] for name in names}
