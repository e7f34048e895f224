"""The algm custom ops on real-photo activations and on edge cases."""

from __future__ import annotations

import pytest
import torch

from algm_export.merging.ops import global_merge, local_merge, unmerge

GRID = (32, 32)
N = GRID[0] * GRID[1]


def check_merge_outputs(merged, sizes, token_map):
    """Invariants every merge output satisfies (per image: its own count, padding of size 0 after it)."""
    batch, tokens, _ = merged.shape
    assert sizes.shape == (batch, tokens) and token_map.shape == (batch, N)
    assert token_map.dtype == torch.int32 and sizes.dtype == torch.float32
    assert torch.all(sizes[:, 0] == 1), "the class token is never merged"
    assert torch.all(sizes[:, 1:].sum(dim=1) == N), "token sizes sum to the patch count"
    counts = token_map.long().amax(dim=1) + 2
    assert int(token_map.min()) >= 0 and int(counts.max()) == tokens, "map in range, the longest image unpadded"
    members = torch.zeros(batch, tokens - 1).scatter_add_(1, token_map.long(), torch.ones(batch, N))
    assert torch.equal(members, sizes[:, 1:]), "each token's size equals the patches mapped to it"
    padding = torch.arange(tokens)[None, :] >= counts[:, None]
    assert torch.equal(sizes > 0, ~padding), "every real token holds patches, padding none"
    assert torch.all(merged[padding] == 0) and torch.isfinite(merged).all()
    return counts


def test_local_merge_invariants_and_means(block1_tokens):
    merged, sizes, token_map = local_merge(block1_tokens, *GRID, 2, 2, 0.88, True)
    counts = check_merge_outputs(merged, sizes, token_map)
    assert merged.shape[1] < 1 + N
    patches = block1_tokens[:, 1:]
    for b in range(len(merged)):
        for slot in (0, int(counts[b]) - 2):
            members = patches[b, token_map[b] == slot]
            torch.testing.assert_close(merged[b, 1 + slot], members.mean(dim=0), rtol=0, atol=1e-5)


def test_global_merge_composes_map_and_weights_by_size(block1_tokens):
    merged, sizes, token_map = local_merge(block1_tokens, *GRID, 2, 2, 0.88, True)
    merged2, sizes2, token_map2 = global_merge(merged, sizes, token_map, 5, True)
    check_merge_outputs(merged2, sizes2, token_map2)
    assert merged2.shape[1] < merged.shape[1]
    patches = block1_tokens[:, 1:]
    # Sizes carry through: each final token is the plain mean of the original patches it holds.
    for b in range(len(merged2)):
        big = int(sizes2[b, 1:].argmax())
        members = patches[b, token_map2[b] == big]
        torch.testing.assert_close(merged2[b, 1 + big], members.mean(dim=0), rtol=0, atol=1e-4)


def test_per_image_merges_equal_batch1_and_min_rule_shares_r(block1_tokens):
    merged, sizes, token_map = local_merge(block1_tokens, *GRID, 2, 2, 0.88, True)
    counts = check_merge_outputs(merged, sizes, token_map)
    merged2, sizes2, token_map2 = global_merge(merged, sizes, token_map, 5, True)
    counts2 = check_merge_outputs(merged2, sizes2, token_map2)
    assert len(set(counts.tolist())) == 4 and len(set(counts2.tolist())) == 4, "the photos merge differently"
    for b in range(4):
        alone = local_merge(block1_tokens[b : b + 1], *GRID, 2, 2, 0.88, True)
        assert torch.equal(alone[2][0], token_map[b]) and alone[0].shape[1] == counts[b]
        torch.testing.assert_close(alone[0][0], merged[b, : counts[b]], rtol=0, atol=1e-6)
        alone2 = global_merge(*alone, 5, True)
        assert torch.equal(alone2[2][0], token_map2[b]) and alone2[0].shape[1] == counts2[b]
        torch.testing.assert_close(alone2[0][0], merged2[b, : counts2[b]], rtol=0, atol=1e-6)
    shared = local_merge(block1_tokens, *GRID, 2, 2, 0.88, False)
    assert shared[0].shape[1] == int(counts.max()) and torch.all(shared[1] > 0), "min rule: one count, no padding"


def test_unmerge_gathers_by_map(block1_tokens):
    merged, _, token_map = local_merge(block1_tokens, *GRID, 2, 2, 0.88, True)
    values = torch.arange(merged.shape[1] - 1, dtype=torch.float32)[None, :, None].repeat(4, 1, 3)
    spread = unmerge(values, token_map)
    assert spread.shape == (4, N, 3)
    assert torch.equal(spread[..., 0].long(), token_map.long())


def test_zero_norm_tokens_give_no_nan():
    x = torch.zeros(2, 1 + 16, 8)
    x[:, 1::3] = 1.0
    merged, sizes, token_map = local_merge(x, 4, 4, 2, 2, 0.5, True)
    assert torch.isfinite(merged).all() and torch.isfinite(sizes).all()
    merged2, sizes2, _ = global_merge(merged, sizes, token_map, 5, True)
    assert torch.isfinite(merged2).all() and torch.isfinite(sizes2).all()


def test_ties_break_towards_lower_window_index():
    x = torch.ones(1, 1 + 16, 4)  # every window identical: similarity 1 everywhere
    merged, sizes, token_map = local_merge(x, 4, 4, 2, 2, 0.9, True)
    assert merged.shape[1] == 1 + 4
    expected = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]).reshape(1, 16)
    assert torch.equal(token_map.long(), expected)


def test_non_square_grid_and_bad_window():
    x = torch.randn(1, 1 + 4 * 6, 8)
    merged, _, token_map = local_merge(x, 4, 6, 2, 3, -1.0 + 1e-6, True)  # every window merges
    assert merged.shape[1] == 1 + 4 and token_map.shape == (1, 24)
    with pytest.raises(ValueError, match="does not tile"):
        local_merge(x, 4, 6, 3, 3, 0.5, True)
    with pytest.raises(ValueError, match="do not match"):
        local_merge(x, 5, 5, 1, 2, 0.5, True)


def test_ops_export_as_single_nodes(tiny_model, photo_batch):
    program = torch.export.export(tiny_model, (photo_batch[:2],),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},))
    targets = [str(node.target) for node in program.graph.nodes if "algm" in str(node.target)]
    merges = [target for target in targets if target != "algm.packed_attention.default"]
    assert merges == ["algm.local_merge.default", "algm.global_merge.default", "algm.unmerge.default"]
    # attention on packed tokens: every encoder block after the first (which holds the local merge), every decoder block
    config = tiny_model.config
    assert targets.count("algm.packed_attention.default") == config.n_layers - 1 + config.decoder_layers
    with torch.no_grad():
        for index in (0, 3):  # token counts differ between these photos
            exported = program.module()(photo_batch[index : index + 1])
            torch.testing.assert_close(exported, tiny_model(photo_batch[index : index + 1]), rtol=0, atol=1e-5)
