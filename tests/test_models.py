"""Model variants: decoders, distillation token, padding, position-embedding resizing."""

from __future__ import annotations

import pytest
import torch

from algm_export import ALGMConfig, SegmenterConfig
from algm_export.models.segmenter import Segmenter
from algm_export.reference.research_algm import reference_forward


def small_config(**changes) -> SegmenterConfig:
    base = dict(backbone="vit_test", d_model=64, n_heads=2, n_layers=6, d_ff=256, patch_size=16,
                image_size=(256, 256), n_cls=5, decoder="linear", decoder_layers=0)
    return SegmenterConfig(**{**base, **changes})


def test_linear_decoder_matches_reference(photo_batch):
    torch.manual_seed(1)
    model = Segmenter(small_config(), ALGMConfig(layers=(1, 4), threshold=0.8)).eval()
    images = torch.nn.functional.interpolate(photo_batch, size=(256, 256), mode="bilinear")
    with torch.no_grad():
        logits = model(images)
    expected, counts = reference_forward(model, images, model.algm)
    assert model.token_counts == counts and counts[0] < 257
    assert logits.shape == (4, 5, 256, 256)
    assert (logits - expected).abs().max().item() <= 1e-4


def test_other_input_size_pads_crops_and_resizes_pos_embed(tiny_model, photo_batch):
    images = torch.nn.functional.interpolate(photo_batch[:1], size=(384, 500), mode="bilinear")
    padded = torch.nn.functional.pad(images, (0, 12))
    with torch.no_grad():
        logits = tiny_model(images)
        counts = tiny_model.token_counts
        logits_padded = tiny_model(padded)
    assert logits.shape == (1, 150, 384, 500)
    assert 1 + 24 * 32 > counts[0] > counts[1]  # grid 24x32 after padding to 384x512
    assert torch.equal(logits, logits_padded[..., :500])
    odd = torch.nn.functional.interpolate(photo_batch[:1], size=(384, 528), mode="bilinear")
    with pytest.raises(ValueError, match="does not tile the 24x33 grid"):
        tiny_model(odd)


def test_distilled_dense_model_runs():
    torch.manual_seed(2)
    model = Segmenter(small_config(distilled=True, decoder="mask_transformer", decoder_layers=1,
                                   d_model=128, n_heads=2), None).eval()
    assert model.encoder.pos_embed.shape[1] == 2 + 256 and "encoder.dist_token" in model.state_dict()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 256, 256)).shape == (2, 5, 256, 256)
