"""The production ALGM model against the test-only restatement of the published algorithm."""

from __future__ import annotations

import pytest
import torch

from algm_export import ALGMConfig
from algm_export.photos import SAMPLE_PHOTOS
from algm_export.reference.research_algm import reference_forward

TOLERANCE = 1e-4


@pytest.mark.parametrize("index", [i if i == 0 else pytest.param(i, marks=pytest.mark.slow)
                                   for i in range(len(SAMPLE_PHOTOS))], ids=SAMPLE_PHOTOS)
def test_batch1_matches_reference(tiny_model, photo_batch, index):
    images = photo_batch[index : index + 1]
    with torch.no_grad():
        logits = tiny_model(images)
    expected, expected_counts = reference_forward(tiny_model, images, tiny_model.algm)
    assert tiny_model.token_counts == expected_counts
    assert (logits - expected).abs().max().item() <= TOLERANCE
    assert tiny_model.token_counts[0] < 1025, "CLAP merged nothing: the merge path was not exercised"
    assert tiny_model.token_counts[1] < tiny_model.token_counts[0], "GBM merged nothing"


def test_batch4_matches_reference_and_uses_batch_minimum(tiny_model, photo_batch):
    with torch.no_grad():
        single_counts = []
        for index in range(4):
            tiny_model(photo_batch[index : index + 1])
            single_counts.append(tiny_model.token_counts)
        logits = tiny_model(photo_batch)
    expected, expected_counts = reference_forward(tiny_model, photo_batch, tiny_model.algm)
    assert tiny_model.token_counts == expected_counts
    assert (logits - expected).abs().max().item() <= TOLERANCE
    # r is a minimum over the batch: the batch keeps as many CLAP tokens as its least mergeable image.
    assert tiny_model.token_counts[0] == max(counts[0] for counts in single_counts)
    assert len({tuple(c) for c in single_counts}) > 1, "photos should merge differently"


def test_threshold_above_one_is_dense(tiny_model, photo_batch):
    images = photo_batch[:2]
    with torch.no_grad():
        tiny_model.set_algm(None)
        dense = tiny_model(images)
        tiny_model.set_algm(ALGMConfig(layers=(1,), threshold=1.2))
        local_only = tiny_model(images)
        counts = tiny_model.token_counts
        tiny_model.set_algm(ALGMConfig())
    assert counts == [1025]
    assert torch.equal(dense, local_only)


def test_local_threshold_above_one_still_merges_globally(tiny_model, photo_batch):
    images = photo_batch[1:2]
    algm = ALGMConfig(threshold=1.2)
    with torch.no_grad():
        tiny_model.set_algm(algm)
        logits = tiny_model(images)
        counts = tiny_model.token_counts
        tiny_model.set_algm(ALGMConfig())
    expected, expected_counts = reference_forward(tiny_model, images, algm)
    assert counts == expected_counts and counts[0] == 1025 and counts[1] < 1025
    assert (logits - expected).abs().max().item() <= TOLERANCE


def test_replaying_own_decisions_reproduces_logits(tiny_model, photo_batch):
    with torch.no_grad():
        logits = tiny_model(photo_batch)
        maps = tiny_model.token_maps
        counts = tiny_model.token_counts
        replayed = tiny_model(photo_batch, replay_maps=maps)
    assert maps.shape == (4, 2, 1024) and maps.dtype == torch.int32
    assert tiny_model.token_counts == counts
    assert (replayed - logits).abs().max().item() <= 1e-5


def test_replaying_other_decisions_changes_logits(tiny_model, photo_batch):
    with torch.no_grad():
        tiny_model(photo_batch[3:4])
        own = tiny_model.token_maps
        tiny_model(photo_batch[0:1])
        other = tiny_model.token_maps
        forced = tiny_model(photo_batch[0:1], replay_maps=own)
        counts = tiny_model.token_counts
        natural = tiny_model(photo_batch[0:1])
    assert counts != tiny_model.token_counts
    assert (forced - natural).abs().max().item() > 1e-2
    assert not torch.equal(own, other)
