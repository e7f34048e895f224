"""Which token goes where: the data-dependent half of the two ALGM merges, in plain PyTorch.

Each merge is written as a *slot assignment*: for every input token, the index of the output token
it is averaged into. The output sequence is then a size-weighted scatter-mean of the inputs by slot
(:func:`algm_export.merging.ops.scatter_mean`). This form is what every backend of the project
implements (ONNX lowering, C++/CUDA kernels), so they all share one definition:

* ties in similarity are broken towards the lower index (a stable descending sort);
* cosine similarity uses ``x / max(||x||, 1e-12)``, so a zero-norm token has similarity 0, never NaN;
* all similarity and threshold arithmetic runs in float32 whatever the activation dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops_contract import NORM_EPSILON

NORM_EPS = NORM_EPSILON


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm in float32 (zero rows stay zero)."""
    return F.normalize(x.float(), dim=-1, eps=NORM_EPS)


def descending_ranks(values: torch.Tensor) -> torch.Tensor:
    """Rank of each entry along dim 1 in a stable descending order (0 = largest; ties: lower index first)."""
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order))
    return ranks


def window_of_patch(grid: tuple[int, int], window: tuple[int, int], device: torch.device) -> torch.Tensor:
    """For each patch in raster order, the raster index of the window that contains it. Shape ``[N]``."""
    rows = torch.arange(grid[0], device=device) // window[0]
    cols = torch.arange(grid[1], device=device) // window[1]
    return (rows[:, None] * (grid[1] // window[1]) + cols[None, :]).reshape(-1)


def window_similarity(patches: torch.Tensor, grid: tuple[int, int], window: tuple[int, int]) -> torch.Tensor:
    """Mean pairwise cosine similarity (self-pairs excluded) of the tokens of each window.

    ``patches``: ``[B, N, C]`` patch tokens in raster order. Returns ``[B, W]`` float32, windows in raster order.
    """
    batch, _, channels = patches.shape
    wh, ww = window
    k = wh * ww
    units = unit_rows(patches).reshape(batch, grid[0] // wh, wh, grid[1] // ww, ww, channels)
    units = units.permute(0, 1, 3, 2, 4, 5).reshape(batch, -1, k, channels)
    gram = units @ units.transpose(-1, -2)
    off_diagonal = 1.0 - torch.eye(k, device=patches.device)
    return (gram * off_diagonal).sum(dim=(-1, -2)) / float(k * (k - 1))


def local_assignment(
    x: torch.Tensor, grid: tuple[int, int], window: tuple[int, int], threshold: float, per_image: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLAP slot assignment for ``x`` = ``[B, 1+N, C]`` (class token first).

    Each image's r = its number of windows with similarity >= ``threshold`` (``per_image``) or, with the
    published rule, the minimum of those numbers over the batch; each image merges its r most similar
    windows. Output order: class token, the r merged windows by descending similarity, then the tokens of
    the other windows in raster order. Returns (slots ``[B, 1+N]`` int64, per-image counts ``[B]`` int64
    = 1 + r + N - k*r); the output holds ``counts.max()`` tokens, an image's slots past its count are padding.
    """
    n_patches = x.shape[1] - 1
    k = window[0] * window[1]
    similarity = window_similarity(x[:, 1:], grid, window)
    r = (similarity >= threshold).sum(dim=1)
    if not per_image:
        r = r.min().expand_as(r)
    window_rank = descending_ranks(similarity)
    patch_window = window_of_patch(grid, window, x.device)
    patch_rank = window_rank[:, patch_window]
    merged = patch_rank < r[:, None]
    kept_before = torch.cumsum((~merged).long(), dim=1) - 1
    patch_slots = torch.where(merged, 1 + patch_rank, 1 + r[:, None] + kept_before)
    slots = torch.cat([torch.zeros_like(patch_slots[:, :1]), patch_slots], dim=1)
    return slots, 1 + r + n_patches - k * r


def bipartite_scores(x: torch.Tensor, layer_number: int, valid: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """GBM's float32 scores for ``x`` = ``[B, T, C]`` (class token first): the cosine matrix A x B
    ``[B, n_a, n_b]`` (class row -inf), each A token's best match and best score ``[B, n_a]``, and the
    adaptive threshold of layer ``layer_number`` (see :func:`global_assignment`).

    With ``valid`` (``[B, T]`` bool, False for padding tokens) the threshold is per image (``[B]``, over
    each image's own tokens): padded B tokens are never a match and padded A tokens score -inf. Without it,
    the published batch threshold (a 0-d tensor, means over images of per-image means and stds)."""
    units = unit_rows(x)
    a, b = units[:, ::2], units[:, 1::2]
    scores = a @ b.transpose(-1, -2)
    scores[:, 0, :] = -torch.inf
    if valid is not None:
        scores = scores.masked_fill(~valid[:, None, 1::2], -torch.inf)
    best_match = scores.argmax(dim=-1)
    best_score = scores.gather(-1, best_match[..., None])[..., 0]
    if valid is None:
        candidates = best_score[:, 1:]
        threshold = candidates.mean(dim=1).mean() + candidates.std(dim=1).mean() / layer_number
        return scores, best_match, best_score, threshold
    best_score = best_score.masked_fill(~valid[:, ::2], -torch.inf)
    counted = valid[:, ::2][:, 1:]
    count = counted.sum(dim=1).float()
    candidates = best_score[:, 1:].masked_fill(~counted, 0.0)
    means = candidates.sum(dim=1) / count
    deviations = (candidates - means[:, None]).masked_fill(~counted, 0.0)
    stds = ((deviations * deviations).sum(dim=1) / (count - 1.0)).sqrt()
    return scores, best_match, best_score, means + stds / layer_number


def global_assignment(x: torch.Tensor, layer_number: int, sizes: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """GBM slot assignment for ``x`` = ``[B, T, C]`` (class token first).

    A = even positions (class token = A[0], never merged), B = odd positions. Each A token's best cosine
    match in B. Per image (``sizes`` given, ``[B, T]``, 0 marking padding tokens): threshold t = the mean
    best score of the image's A tokens (class token excluded) + their unbiased std / ``layer_number``, r =
    the number of its A tokens with score >= t. Published rule (``sizes`` None, no padding): t = mean over
    images of those means + mean over images of those stds / ``layer_number``, r = the minimum over the batch.
    Each image merges its r best-scoring A tokens into their B match.
    Output order: the unmerged A tokens in order, then the image's B tokens in order; padding tokens go to
    slot 0 (their size 0 adds nothing). Returns (slots ``[B, T]``, per-image counts ``[B]`` = T_b - r).
    """
    valid = sizes > 0 if sizes is not None else None
    scores, best_match, best_score, threshold = bipartite_scores(x, layer_number, valid)
    above = (best_score >= threshold.reshape(-1, 1)).sum(dim=1)
    r = above if valid is not None else above.min().expand_as(above)
    merged = descending_ranks(best_score) < r[:, None]
    kept_before = torch.cumsum((~merged).long(), dim=1) - 1
    n_b = torch.arange(scores.shape[2], device=x.device)
    if valid is None:
        tokens = torch.full_like(r, x.shape[1])
    else:
        tokens = valid.sum(dim=1)
    kept_a = (tokens + 1) // 2 - r
    a_slots = torch.where(merged, kept_a[:, None] + best_match, kept_before)
    b_slots = kept_a[:, None] + n_b
    slots = torch.empty(x.shape[:2], dtype=torch.long, device=x.device)
    slots[:, ::2] = a_slots
    slots[:, 1::2] = b_slots
    if valid is not None:
        slots = slots.masked_fill(~valid, 0)
    return slots, tokens - r
