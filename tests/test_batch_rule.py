"""Per-image merging (the default batch rule): every image of a mixed batch gets its batch-1 result, in
PyTorch, whatever else shares its batch; the published rule (``min``) does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from algm_export import ALGMConfig
from algm_export.models.segmenter import Segmenter
from algm_export.photos import SAMPLE_PHOTOS
from algm_export.preprocess import make_batch


@pytest.fixture(scope="module")
def mixed_batch(tiny_model, photos) -> torch.Tensor:
    """The four photos and two near-flat images (a colour and two tones, with faint noise that breaks the
    exact ties of a flat image; they merge far more than photos): [6, 3, 512, 512]."""
    rng = np.random.default_rng(0)
    flat = np.full((512, 512, 3), (90, 140, 200), np.int16)
    halves = flat.copy()
    halves[:, 256:] = (30, 30, 30)
    noisy = [np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8) for image in (flat, halves)]
    rgb = [photos[name] for name in SAMPLE_PHOTOS] + noisy
    return torch.from_numpy(make_batch(rgb, (512, 512), tiny_model.config.normalization))


def run(model: Segmenter, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        logits = model(images)
    return logits, model.token_counts.clone(), model.token_maps.clone()


def test_each_image_of_a_mixed_batch_equals_its_batch1_result(tiny_model, mixed_batch):
    logits, counts, maps = run(tiny_model, mixed_batch)
    assert counts.shape == (6, 2) and maps.shape == (6, 2, 1024)
    assert len(set(counts[:, 0].tolist())) >= 5, "the images merge differently: padding is exercised"
    assert counts[4:, 1].max() < counts[:4, 1].min(), "the near-flat images merge the most"
    for b in range(len(mixed_batch)):
        alone, alone_counts, alone_maps = run(tiny_model, mixed_batch[b : b + 1])
        assert torch.equal(alone_counts[0], counts[b]) and torch.equal(alone_maps[0], maps[b]), b
        assert (alone[0] - logits[b]).abs().max().item() <= 1e-4, b
        assert torch.equal(alone[0].argmax(0), logits[b].argmax(0)), b
    # and in another company: the flat image beside one photo only
    pair, pair_counts, _ = run(tiny_model, mixed_batch[[4, 0]])
    assert torch.equal(pair_counts, counts[[4, 0]])
    assert (pair - logits[[4, 0]]).abs().max().item() <= 1e-4


def test_linear_decoder_per_image_and_replay(mixed_batch):
    from test_models import small_config

    torch.manual_seed(3)
    model = Segmenter(small_config(), ALGMConfig(layers=(1, 4), threshold=0.8)).eval()
    images = torch.nn.functional.interpolate(mixed_batch, size=(256, 256), mode="bilinear")
    logits, counts, maps = run(model, images)
    assert len(set(counts[:, 1].tolist())) > 3
    for b in range(len(images)):
        alone, alone_counts, _ = run(model, images[b : b + 1])
        assert torch.equal(alone_counts[0], counts[b])
        assert (alone[0] - logits[b]).abs().max().item() <= 1e-4
    with torch.no_grad():
        replayed = model(images, replay_maps=maps)
        assert torch.equal(model.token_counts, counts), "replay keeps each image's counts"
        single = model(images[2:3], replay_maps=maps[2:3])
    assert (replayed - logits).abs().max().item() <= 1e-4
    assert (single[0] - logits[2]).abs().max().item() <= 1e-4


def test_published_rule_makes_an_image_depend_on_its_batch(tiny_model, mixed_batch):
    tiny_model.set_algm(ALGMConfig(batch_rule="min"))
    try:
        logits, counts, _ = run(tiny_model, mixed_batch[[0, 4]])
        alone, alone_counts, _ = run(tiny_model, mixed_batch[4:5])
    finally:
        tiny_model.set_algm(ALGMConfig())
    assert counts[0, 0] == counts[1, 0] > alone_counts[0, 0], "the flat image merges as little as the photo"
    assert (alone[0] - logits[1]).abs().max().item() > 1e-2


def test_batch_rule_is_stored_and_checked():
    assert ALGMConfig().batch_rule == "per-image" and ALGMConfig().per_image
    assert ALGMConfig.from_dict(ALGMConfig(batch_rule="min").to_dict()).batch_rule == "min"
    old = {"layers": [1, 5], "window": [2, 2], "threshold": 0.88}
    assert ALGMConfig.from_dict(old).batch_rule == "per-image"
    assert ALGMConfig.from_dict(old, missing_rule="min").batch_rule == "min"
    from algm_export.errors import AlgmExportError

    with pytest.raises(AlgmExportError, match="unknown ALGM batch rule 'max'"):
        ALGMConfig(batch_rule="max")


def test_packed_and_padded_linear_layers_agree(tiny_model, mixed_batch, monkeypatch):
    """The two layouts of the per-image rule (Linear layers on packed tokens, the default, or on tokens padded
    to the longest image) compute the same thing."""
    from algm_export.models import encoder
    from algm_export.models.packing import Packing

    images = mixed_batch[[0, 3, 4]]
    packed, packed_counts, packed_maps = run(tiny_model, images)
    monkeypatch.setattr(encoder, "PACK_TOKENS", False)
    padded, padded_counts, padded_maps = run(tiny_model, images)
    assert torch.equal(packed_counts, padded_counts) and torch.equal(packed_maps, padded_maps)
    assert (packed - padded).abs().max().item() <= 1e-4
    sizes = torch.tensor([[1.0, 2.0, 0.0], [1.0, 1.0, 3.0]])
    packing = Packing.of(sizes, torch.float32)
    x = torch.arange(6.0).reshape(2, 3, 1)
    assert packing.pack(x).flatten().tolist() == [0.0, 1.0, 3.0, 4.0, 5.0], "real tokens, image after image"
    assert packing.unpack(packing.pack(x)).flatten().tolist() == [0.0, 1.0, 0.0, 3.0, 4.0, 5.0], \
        "padding reads its image's class token"
    assert packing.mask[:, 0, 0].tolist() == [[0.0, 0.0, -float("inf")], [0.0, 0.0, 0.0]]
