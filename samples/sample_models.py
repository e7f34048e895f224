"""Small sample Segmenters for demos and tests, made on the spot (nothing is downloaded). Not part of the
package: samples/make_sample_checkpoint.py and the tests import it from this folder.

The encoder keeps its random initialisation. The decoder is then fitted in FIT_STEPS optimizer steps to a
"posterize" task on the four bundled photos: each patch's label is the target colour (see
:func:`target_colours`) nearest to its mean colour. That gives the label maps the peaked
logits of a trained model (FP16 parity is judged on labels, and a purely random decoder has near-ties
everywhere) and makes the coloured label maps look like posterized photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import init_weights_vit_timm

from algm_export.checkpoints.research import write_research_checkpoint
from algm_export.config import ALGMConfig, Normalization, SegmenterConfig
from algm_export.datasets import ADE20K_CLASSES
from algm_export.models.encoder import encode
from algm_export.models.segmenter import Segmenter
from algm_export.photos import SAMPLE_PHOTOS, sample_photo
from algm_export.preprocess import make_batch, resize_rgb

FIT_STEPS = 100
FIT_TOKENS = 256
FIT_LEARNING_RATE = 3e-3

PRESETS: dict[str, dict] = {
    "tiny": dict(backbone="vit_tiny_patch16_384", d_model=192, n_heads=3, n_layers=12, d_ff=768),
    "small": dict(backbone="vit_small_patch16_384", d_model=384, n_heads=6, n_layers=12, d_ff=1536),
    # A few hundred thousand parameters: graphs small enough to travel with the tree (tools/gpu_check/fixtures/).
    "micro": dict(backbone="vit_micro_patch16_256", d_model=64, n_heads=2, n_layers=6, d_ff=256),
}


def sample_config(preset: str = "tiny", image_size: int = 512) -> SegmenterConfig:
    """ViT-``preset``/16 Segmenter config with a 2-layer mask-transformer decoder and ADE20K's 150 classes."""
    return SegmenterConfig(
        patch_size=16, image_size=(image_size, image_size), n_cls=len(ADE20K_CLASSES), decoder="mask_transformer",
        decoder_layers=2, normalization=Normalization.named("vit"), class_names=ADE20K_CLASSES, **PRESETS[preset],
    )


def target_colours(n_cls: int) -> np.ndarray:
    """The posterize task's colour per class, ``[n_cls, 3]`` uint8: fixed random colours, well spread (unlike
    the display palette, whose first colours are dark), so that the fitted decoder has the peaked logits the
    tests rely on. A property of the sample model, not a display palette."""
    return np.random.default_rng(20240617).integers(32, 256, size=(n_cls, 3), dtype=np.uint8)


def posterize_targets(images: list[np.ndarray], grid: tuple[int, int], n_cls: int) -> torch.Tensor:
    """Per-patch labels [B, N]: the target colour nearest to each patch's mean colour."""
    pixels = torch.from_numpy(np.stack(images).astype(np.float32))
    batch, height, width, _ = pixels.shape
    means = pixels.reshape(batch, grid[0], height // grid[0], grid[1], width // grid[1], 3).mean(dim=(2, 4))
    colours = torch.from_numpy(target_colours(n_cls).astype(np.float32))
    return torch.cdist(means.reshape(batch, -1, 3), colours[None].expand(batch, -1, -1)).argmin(dim=-1)


def fit_decoder(model: Segmenter, steps: int = FIT_STEPS, seed: int = 0) -> None:
    """Fit ``model.decoder`` (encoder frozen, dense tokens) to the posterize task on the sample photos."""
    config = model.config
    photos = [resize_rgb(sample_photo(name), config.image_size) for name in SAMPLE_PHOTOS]
    targets = posterize_targets(photos, config.grid, config.n_cls)
    images = torch.from_numpy(make_batch(photos, config.image_size, config.normalization))
    with torch.no_grad():
        tokens = encode(model.encoder, images, config.grid, None)[0][:, model.encoder.num_prefix_tokens:]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.decoder.parameters(), lr=FIT_LEARNING_RATE)
    model.decoder.train()
    for _ in range(steps):
        picked = torch.stack([torch.randperm(tokens.shape[1], generator=generator)[:FIT_TOKENS] for _ in tokens])
        scores = model.decoder(tokens.gather(1, picked[..., None].expand(-1, -1, tokens.shape[2])))
        loss = F.cross_entropy(scores.reshape(-1, config.n_cls), targets.gather(1, picked).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.decoder.eval()
    model.decoder.requires_grad_(False)


def make_sample_segmenter(preset: str = "tiny", image_size: int = 512, algm: ALGMConfig | None = ALGMConfig(),
                          seed: int = 0, fit_steps: int = FIT_STEPS) -> Segmenter:
    """A sample Segmenter in eval mode, reproducible from ``seed``: timm-style random initialisation,
    then ``fit_steps`` decoder steps on the posterize task (0: stay random)."""
    torch.manual_seed(seed)
    model = Segmenter(sample_config(preset, image_size), algm)
    model.decoder.apply(init_weights_vit_timm)
    trunc_normal_(model.decoder.cls_emb, std=0.02)
    if fit_steps:
        fit_decoder(model, fit_steps, seed)
    return model.eval()


def write_sample_checkpoint(folder: str | Path, preset: str = "tiny", image_size: int = 512,
                            algm: ALGMConfig | None = ALGMConfig(), seed: int = 0, fit_steps: int = FIT_STEPS) -> Path:
    """Write a sample research checkpoint (``checkpoint.pth`` + ``variant.yml``) into ``folder``."""
    model = make_sample_segmenter(preset, image_size, algm, seed, fit_steps)
    return write_research_checkpoint(Path(folder), model.config, algm, model.state_dict())
