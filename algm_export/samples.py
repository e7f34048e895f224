"""Small randomly initialised Segmenters for samples and tests (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import init_weights_vit_timm

from .config import ALGMConfig, Normalization, SegmenterConfig
from .datasets import ADE20K_CLASSES
from .models.segmenter import Segmenter
from .checkpoints.research import write_research_checkpoint

PRESETS: dict[str, dict] = {
    "tiny": dict(backbone="vit_tiny_patch16_384", d_model=192, n_heads=3, n_layers=12, d_ff=768),
    "small": dict(backbone="vit_small_patch16_384", d_model=384, n_heads=6, n_layers=12, d_ff=1536),
}


def sample_config(preset: str = "tiny", image_size: int = 512) -> SegmenterConfig:
    """ViT-``preset``/16 Segmenter config with a 2-layer mask-transformer decoder and ADE20K's 150 classes."""
    return SegmenterConfig(
        patch_size=16, image_size=(image_size, image_size), n_cls=len(ADE20K_CLASSES), decoder="mask_transformer",
        decoder_layers=2, normalization=Normalization.named("vit"), class_names=ADE20K_CLASSES, **PRESETS[preset],
    )


def make_sample_segmenter(preset: str = "tiny", image_size: int = 512, algm: ALGMConfig | None = ALGMConfig(),
                          seed: int = 0) -> Segmenter:
    """A Segmenter with timm-style random initialisation, reproducible from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    model = Segmenter(sample_config(preset, image_size), algm)
    model.decoder.apply(init_weights_vit_timm)
    trunc_normal_(model.decoder.cls_emb, std=0.02)
    return model.eval()


def write_sample_checkpoint(folder: str | Path, preset: str = "tiny", image_size: int = 512,
                            algm: ALGMConfig | None = ALGMConfig(), seed: int = 0) -> Path:
    """Write a sample research checkpoint (``checkpoint.pth`` + ``variant.yml``) into ``folder``."""
    model = make_sample_segmenter(preset, image_size, algm, seed)
    return write_research_checkpoint(Path(folder), model.config, algm, model.state_dict())
