"""The C++ CPU kernels (libalgm_cpu.so through tests/cpu_kernels.py) against the PyTorch algm ops, under
both batch rules (per image, with size-0 padding; the published batch minimum).

Selections (token counts, token maps, sizes) must be identical; FP32 values within 1e-5; FP16 values
within one FP16 ulp of the PyTorch op run on the same FP16 input; Unmerge exact.
tests/test_kernels_functions.py compares the kernels with the ONNX function bodies.
"""

from __future__ import annotations

import warnings

import cpu_kernels as kernels
import numpy as np
import pytest
import torch

from algm_export.errors import AlgmExportError
from algm_export.merging import ops
from algm_export.models.encoder import attention_half, mlp_half

GRID = (32, 32)
WINDOW = (2, 2)
THRESHOLD = 0.88
GBM_LAYER = 5
# (photos in SAMPLE_PHOTOS order, per_image): a single photo merges alike under both rules.
BATCHES = {"astronaut": (slice(0, 1), False), "rocket": (slice(3, 4), False), "mixed4-min": (slice(0, 4), False),
           "mixed4-per-image": (slice(0, 4), True)}


@pytest.fixture(scope="session")
def cpu_library():
    """Builds (or finds) libalgm_cpu.so once per session."""
    return kernels.find_cpu_library()


@pytest.fixture(scope="module", params=list(BATCHES))
def photos_case(request, tiny_model, block1_tokens):
    """(block-1 tokens, (block-5 tokens, sizes, token map), per_image) of one batch, computed by PyTorch for
    that batch under its rule (the published rule's merges depend on all the batch's images; per image, the
    block-5 tokens carry size-0 padding)."""
    rows, per_image = BATCHES[request.param]
    x1 = block1_tokens[rows]
    vit = tiny_model.encoder
    with torch.no_grad():
        x, sizes, token_map = ops.local_merge(x1, *GRID, *WINDOW, THRESHOLD, per_image)
        x = mlp_half(vit.blocks[0], x)
        for block in vit.blocks[1 : GBM_LAYER - 1]:
            x = block(x)
        x5 = attention_half(vit.blocks[GBM_LAYER - 1], x)
    return x1, (x5, sizes, token_map), per_image


def assert_same_merge(ours, reference, atol=1e-5):
    """Identical counts, maps and sizes; values within ``atol`` (FP32) or one FP16 ulp."""
    merged, sizes, token_map = ours
    ref_merged, ref_sizes, ref_map = (t.numpy() for t in reference)
    assert merged.shape == ref_merged.shape, "token counts differ"
    np.testing.assert_array_equal(token_map, ref_map)
    np.testing.assert_array_equal(sizes, ref_sizes)
    assert merged.dtype == ref_merged.dtype
    if merged.dtype == np.float16:
        assert_within_one_fp16_ulp(merged, ref_merged)
    else:
        np.testing.assert_allclose(merged, ref_merged, rtol=0, atol=atol)


def assert_within_one_fp16_ulp(actual: np.ndarray, expected: np.ndarray) -> None:
    """Both round a float32 mean to FP16; the two float32 means differ in their last bits (other summation
    orders), which can put them on either side of an FP16 rounding boundary: at most one FP16 ulp apart."""
    ulp = np.spacing(np.maximum(np.abs(actual), np.abs(expected))).astype(np.float32)
    difference = np.abs(actual.astype(np.float32) - expected.astype(np.float32))
    assert np.all(difference <= ulp), f"max difference {difference.max()} exceeds one FP16 ulp"


def local_both(x: torch.Tensor, grid=GRID, window=WINDOW, threshold=THRESHOLD, per_image=False):
    ours = kernels.local_merge(x.numpy(), grid, window, threshold, per_image)
    return ours, ops.local_merge(x, *grid, *window, threshold, per_image)


def global_both(x: torch.Tensor, sizes: torch.Tensor, token_map: torch.Tensor, layer=GBM_LAYER, per_image=False):
    ours = kernels.global_merge(x.numpy(), sizes.numpy(), token_map.numpy(), layer, per_image)
    return ours, ops.global_merge(x, sizes, token_map, layer, per_image)


# --- real photos -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_local_merge_on_photos(cpu_library, photos_case, dtype):
    x1, _, per_image = photos_case
    ours, reference = local_both(x1.to(dtype), per_image=per_image)
    assert ours[0].shape[1] < 1 + GRID[0] * GRID[1], "the photos must actually merge"
    assert_same_merge(ours, reference)


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.95])
@pytest.mark.parametrize("per_image", [False, True])
def test_local_merge_other_thresholds(cpu_library, block1_tokens, threshold, per_image):
    assert_same_merge(*local_both(block1_tokens, threshold=threshold, per_image=per_image))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_global_merge_on_photos(cpu_library, photos_case, dtype):
    _, (x5, sizes, token_map), per_image = photos_case
    ours, reference = global_both(x5.to(dtype), sizes, token_map, per_image=per_image)
    assert ours[0].shape[1] < x5.shape[1], "the photos must actually merge"
    assert_same_merge(ours, reference)


@pytest.mark.parametrize("layer", [2, 12])
def test_global_merge_other_layers(cpu_library, photos_case, layer):
    _, (x5, sizes, token_map), per_image = photos_case
    assert_same_merge(*global_both(x5, sizes, token_map, layer, per_image))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_unmerge_is_exact(cpu_library, photos_case, dtype):
    _, (x5, _, token_map), _ = photos_case
    values = x5[:, 1:, :7].to(dtype)
    ours = kernels.unmerge(values.numpy(), token_map.numpy())
    np.testing.assert_array_equal(ours, ops.unmerge(values, token_map).numpy())


# --- edge cases ------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_image", [False, True])
def test_zero_norm_tokens_give_no_nan(cpu_library, per_image):
    x = torch.zeros(2, 1 + 16, 8)
    x[:, 1::3] = 1.0
    ours, reference = local_both(x, (4, 4), (2, 2), 0.5, per_image)
    assert_same_merge(ours, reference)
    assert np.isfinite(ours[0]).all()
    merged, sizes, token_map = reference
    ours2, reference2 = global_both(merged, sizes, token_map, per_image=per_image)
    assert_same_merge(ours2, reference2)
    assert np.isfinite(ours2[0]).all()


def test_tied_windows_merge_lower_index_first(cpu_library):
    x = torch.ones(1, 1 + 16, 4)  # every window identical: similarity 1 everywhere
    ours, reference = local_both(x, (4, 4), (2, 2), 0.9)
    assert_same_merge(ours, reference)
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]).reshape(1, 16)
    np.testing.assert_array_equal(ours[2], expected)


def test_tied_scores_match_the_lowest_b_token(cpu_library):
    # every score 1 (threshold 1 + 0/layer): all 4 A tokens merge, each into B token 0, the lowest of its ties
    x = torch.ones(2, 9, 4)
    ours, reference = global_both(x, torch.ones(2, 9), torch.arange(8, dtype=torch.int32).expand(2, 8).contiguous())
    assert_same_merge(ours, reference)
    # patches: B0 A1 B1 A2 B2 A3 B3 A4 -> tokens [B0 + A1..A4, B1, B2, B3]
    np.testing.assert_array_equal(ours[2], [[0, 0, 1, 0, 2, 0, 3, 0]] * 2)
    np.testing.assert_array_equal(ours[1], [[1, 5, 1, 1, 1]] * 2)


@pytest.mark.parametrize("threshold", [-1.0 + 1e-6, 0.0, 0.3])
@pytest.mark.parametrize("per_image", [False, True])
def test_non_square_grid(cpu_library, threshold, per_image):
    x = torch.randn(3, 1 + 4 * 6, 8, generator=torch.Generator().manual_seed(0))
    ours, reference = local_both(x, (4, 6), (2, 3), threshold, per_image)
    assert_same_merge(ours, reference)
    assert_same_merge(*global_both(*reference, layer=3, per_image=per_image))


@pytest.fixture
def uneven_pair() -> torch.Tensor:
    """Two images of a 4x4 grid: image 0 has three uniform 2x2 windows (similarity 1), image 1 one."""
    x = torch.randn(2, 17, 8, generator=torch.Generator().manual_seed(1))
    patches = x[:, 1:].view(2, 2, 2, 2, 2, 8)  # [b, window row, row, window col, col, c]
    patches[0, 0, :, 0] = patches[0, 0, :, 1] = patches[0, 1, :, 0] = 1.0
    patches[1, 1, :, 1] = 2.0
    return x


def test_batch_minimum_rule(cpu_library, uneven_pair):
    # The batch merges min(3, 1) = 1 window in each image.
    alone = [kernels.local_merge(uneven_pair[b : b + 1].numpy(), (4, 4), (2, 2), 0.99, False)[0].shape[1]
             for b in range(2)]
    assert alone == [1 + 3 + 16 - 12, 1 + 1 + 16 - 4]
    ours, reference = local_both(uneven_pair, (4, 4), (2, 2), 0.99)
    assert ours[0].shape[1] == 1 + 1 + 16 - 4
    assert_same_merge(ours, reference)


def test_per_image_rule_merges_each_image_as_alone(cpu_library, uneven_pair):
    # Image 0 merges its 3 windows (8 tokens), image 1 its one (14 tokens, the padded length T').
    ours, reference = local_both(uneven_pair, (4, 4), (2, 2), 0.99, per_image=True)
    assert_same_merge(ours, reference)
    merged, sizes, token_map = ours
    assert merged.shape[1] == 14 and (token_map.max(axis=1) + 2).tolist() == [8, 14]
    for b in range(2):
        alone = kernels.local_merge(uneven_pair[b : b + 1].numpy(), (4, 4), (2, 2), 0.99, True)
        np.testing.assert_array_equal(token_map[b], alone[2][0])
        np.testing.assert_array_equal(sizes[b, : alone[1].shape[1]], alone[1][0])
        np.testing.assert_array_equal(merged[b, : alone[0].shape[1]], alone[0][0])
    assert (sizes[0, 8:] == 0).all() and (merged[0, 8:] == 0).all()  # image 0's padding
    # A GBM on the padded tokens ignores the padding: image 0 merges as alone.
    gbm, gbm_reference = global_both(*(torch.from_numpy(t) for t in ours), layer=2, per_image=True)
    assert_same_merge(gbm, gbm_reference)
    alone = kernels.global_merge(merged[:1, :8], sizes[:1, :8], token_map[:1], 2, True)
    np.testing.assert_array_equal(gbm[2][0], alone[2][0])


@pytest.mark.parametrize("tokens", [2, 3])
def test_global_merge_with_too_few_tokens_merges_nothing(cpu_library, tokens):
    x = torch.randn(1, tokens, 4, generator=torch.Generator().manual_seed(2))
    token_map = torch.zeros(1, 4, dtype=torch.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.std of fewer than two values
        ours, reference = global_both(x, torch.ones(1, tokens), token_map, per_image=True)
    assert ours[0].shape[1] == tokens
    assert_same_merge(ours, reference)


def test_invalid_arguments_raise(cpu_library):
    x = np.zeros((1, 1 + 24, 8), dtype=np.float32)
    with pytest.raises(AlgmExportError, match="invalid"):
        kernels.local_merge(x, (4, 6), (3, 3), 0.5, True)  # window does not tile the grid
    with pytest.raises(AlgmExportError, match="invalid"):
        kernels.local_merge(x, (4, 6), (1, 1), 0.5, True)  # windows of one token
    with pytest.raises(AlgmExportError, match="do not match"):
        kernels.local_merge(x, (5, 5), (1, 2), 0.5, True)
    with pytest.raises(AlgmExportError, match="dtype"):
        kernels.local_merge(x.astype(np.float64), (4, 6), (2, 3), 0.5, True)
    sizes, token_map = np.ones((1, 25), np.float32), np.zeros((1, 24), np.int32)
    with pytest.raises(AlgmExportError, match="invalid"):
        kernels.global_merge(x, sizes, token_map, 0, True)  # layer numbers are 1-based
    with pytest.raises(AlgmExportError, match="invalid argument"):
        kernels.global_merge(x, sizes, token_map + 24, 5, True)  # map entry past the last patch token
    with pytest.raises(AlgmExportError, match="invalid"):
        kernels.global_merge(x, sizes, token_map, 5, 2)  # per_image is 0 or 1
    with pytest.raises(AlgmExportError, match="invalid argument"):
        kernels.unmerge(x[:, 1:], token_map - 1)
