"""Segmenter's decoders, producing per-token class scores ``[B, M, n_cls]`` for M (possibly merged) tokens."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from ..config import SegmenterConfig
from .attention import packed_attention_half
from .encoder import mlp_half, padding_mask
from .packing import Packing


class LinearDecoder(nn.Module):
    """A linear layer on each token (``decoder.head``)."""

    def __init__(self, d_encoder: int, n_cls: int):
        super().__init__()
        self.head = nn.Linear(d_encoder, n_cls)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor | None = None, packed: bool = True) -> torch.Tensor:
        """Per-token logits (tokens are independent: ``valid`` and ``packed`` change nothing)."""
        return self.head(tokens)


class MaskTransformerDecoder(nn.Module):
    """Segmenter's mask transformer: class embeddings attend jointly with the tokens; masks are the
    cosine similarities of projected tokens and class embeddings, LayerNorm-ed over classes."""

    def __init__(self, d_encoder: int, d_model: int, n_layers: int, n_cls: int):
        super().__init__()
        self.n_cls = n_cls
        scale = d_model**-0.5
        self.proj_dec = nn.Linear(d_encoder, d_model)
        self.cls_emb = nn.Parameter(torch.randn(1, n_cls, d_model) * 0.02)
        self.blocks = nn.ModuleList(
            Block(d_model, d_model // 64, mlp_ratio=4.0, qkv_bias=True, norm_layer=nn.LayerNorm)
            for _ in range(n_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.proj_patch = nn.Parameter(scale * torch.randn(d_model, d_model))
        self.proj_classes = nn.Parameter(scale * torch.randn(d_model, d_model))
        self.mask_norm = nn.LayerNorm(n_cls)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor | None = None, packed: bool = True) -> torch.Tensor:
        """Per-token mask logits. ``valid`` ``[B, M]`` (False: a padding token) keeps padding tokens out: with
        ``packed`` the blocks run on each image's real tokens and its class embeddings only (packed rows,
        attention per image), else on the padded layout with padding keys masked. The class embeddings are
        always attended."""
        n_tokens = tokens.shape[1]
        x = torch.cat([self.proj_dec(tokens), self.cls_emb.expand(tokens.shape[0], -1, -1)], dim=1)
        if valid is None:
            for block in self.blocks:
                x = block(x)
            x = self.decoder_norm(x)
        elif packed:
            packing = Packing.of(F.pad(valid, (0, self.n_cls), value=True).float())
            x = packing.pack(x)
            for block in self.blocks:
                x = mlp_half(block, packed_attention_half(block, x, packing))
            x = packing.unpack(self.decoder_norm(x))
        else:
            attn_mask = padding_mask(F.pad(valid, (0, self.n_cls), value=True), x.dtype)
            for block in self.blocks:
                x = block(x, attn_mask=attn_mask)
            x = self.decoder_norm(x)
        patches = F.normalize(x[:, :n_tokens] @ self.proj_patch, dim=-1)
        classes = F.normalize(x[:, n_tokens:] @ self.proj_classes, dim=-1)
        return self.mask_norm(patches @ classes.transpose(1, 2))


def build_decoder(config: SegmenterConfig) -> nn.Module:
    """The decoder named in ``config`` (``linear`` or ``mask_transformer``)."""
    if config.decoder == "linear":
        return LinearDecoder(config.d_model, config.n_cls)
    return MaskTransformerDecoder(config.d_model, config.d_model, config.decoder_layers, config.n_cls)
