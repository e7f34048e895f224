"""Merge decisions read back from ``token_maps``, and how far they are from PyTorch's own scores.

A backend's decisions are legitimate when PyTorch could have taken them had its float32 scores been off by
at most ε: every comparison the backend resolved differently from PyTorch (a window or A token against the
threshold, two windows' order, a merged against a kept one, an A token's match) involves PyTorch scores
within ε of each other. :func:`judge_merges` measures, per merge, the smallest such ε
(``required_epsilon``, 0 when the decisions equal PyTorch's, infinite when the maps are not a valid merge),
how many decisions differ from PyTorch's own, and how many PyTorch scores lie within ε of a boundary.

PyTorch's scores for merge k are computed on the tokens PyTorch gets when it replays the backend's decisions
for merges 1..k-1 (``merge_inputs`` of :meth:`TorchBackend.replay`), with the production assignment code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..config import ALGMConfig
from ..merging.assignment import (
    bipartite_scores,
    global_assignment,
    local_assignment,
    window_of_patch,
    window_similarity,
)


class MalformedMaps(ValueError):
    """``token_maps`` that no merge of the model's kind can produce."""


@dataclass
class MergeJudgement:
    """One merge of one case, judged against PyTorch's scores under replay."""

    merge: int  # 1-based
    kind: str  # "CLAP" or "GBM"
    differing: int  # decisions (windows / A tokens) that differ from PyTorch's own
    near_boundary: int  # PyTorch scores within ε of a threshold, of each other (order) or of a second match
    required_epsilon: float  # the smallest ε under which PyTorch could have taken the backend's decisions
    worst: str  # what needs that ε

    def to_dict(self) -> dict:
        """Plain types (JSON)."""
        data = asdict(self)
        data["required_epsilon"] = None if not np.isfinite(self.required_epsilon) else self.required_epsilon
        return data


def clap_ranks(new_map: np.ndarray, grid: tuple[int, int], window: tuple[int, int], shared_r: bool = False
               ) -> np.ndarray:
    """CLAP decisions ``[B, W]``: each window's position among the merged tokens, -1 when kept.

    Checks the CLAP layout (merged windows first, one token each, r of them per image, the same r for every
    image with ``shared_r`` (the published rule); kept patches after, in raster order) and raises
    :class:`MalformedMaps` otherwise."""
    patch_window = window_of_patch(grid, window, torch.device("cpu")).numpy()
    order = np.argsort(patch_window, kind="stable")
    k = window[0] * window[1]
    tokens = new_map[:, order].reshape(new_map.shape[0], -1, k)
    whole = (tokens == tokens[..., :1]).all(axis=-1)
    ranks = np.where(whole, tokens[..., 0], -1)
    r = whole.sum(axis=1)
    if shared_r and len(set(r.tolist())) > 1:
        raise MalformedMaps(f"CLAP merged {sorted(set(r.tolist()))} windows in one batch (r is shared)")
    for b in range(new_map.shape[0]):
        if sorted(ranks[b][ranks[b] >= 0].tolist()) != list(range(r[b])):
            raise MalformedMaps("CLAP's merged tokens are not the first r tokens")
        patch_rank = ranks[b][patch_window]
        merged = patch_rank >= 0
        expected = np.where(merged, patch_rank, r[b] + np.cumsum(~merged) - 1)
        if not np.array_equal(expected, new_map[b]):
            raise MalformedMaps("token map is not CLAP's layout (merged windows, then kept patches in order)")
    return ranks


def gbm_matches(old_map: np.ndarray, new_map: np.ndarray) -> np.ndarray:
    """GBM decisions ``[B, n_a]``: each A token's B match (index among B tokens), -1 when kept.

    ``old_map``/``new_map``: the patch->token maps before and after the merge. Checks GBM's layout (kept A
    tokens in order, then every B token, merged A tokens in their B token) and raises :class:`MalformedMaps`."""
    batch = old_map.shape[0]
    matches = np.full((batch, (int(old_map.max()) + 3) // 2), -1, dtype=np.int64)
    for b in range(batch):
        tokens = int(old_map[b].max()) + 2  # this image's tokens, class token included
        n_a = (tokens + 1) // 2
        slot = np.full(tokens, -1, dtype=np.int64)
        slot[0] = 0
        slot[old_map[b] + 1] = new_map[b] + 1
        if (slot < 0).any() or not np.array_equal(slot[old_map[b] + 1], new_map[b] + 1):
            raise MalformedMaps("a token's patches went to different GBM slots")
        r = tokens - (int(new_map[b].max()) + 2)
        base = n_a - r
        if r < 0 or base < 1:
            raise MalformedMaps(f"GBM merged {r} of {n_a - 1} A tokens")
        a_slots, b_slots = slot[0::2], slot[1::2]
        merged = a_slots >= base
        expected_a = np.cumsum(~merged) - 1
        if (not np.array_equal(b_slots, base + np.arange(len(b_slots)))
                or not np.array_equal(a_slots[~merged], expected_a[~merged])
                or (a_slots[merged] - base >= len(b_slots)).any() or merged.sum() != r):
            raise MalformedMaps("token map is not GBM's layout (kept A tokens, then B tokens)")
        matches[b, :n_a][merged] = a_slots[merged] - base
    return matches


def _largest(values: np.ndarray) -> float:
    return float(values.max()) if values.size else -np.inf


def _order_violation(ordered: np.ndarray) -> float:
    """Largest increase along a sequence that should be descending (-inf for fewer than 2 values)."""
    if ordered.size < 2:
        return -np.inf
    later_max = np.maximum.accumulate(ordered[::-1])[::-1][1:]
    return float((later_max - ordered[:-1]).max())


def _worst(amounts: dict[str, float]) -> tuple[float, str]:
    what = max(amounts, key=lambda key: amounts[key])
    return max(0.0, amounts[what]), what if amounts[what] > 0 else "-"


def _r_rule(per_image: bool) -> tuple[str, float, object]:
    """How "r is too small" is measured: per image, any image that keeps a score above its threshold
    (largest over images); with the published rule, r is a batch minimum, so only when every image does
    (smallest over images). Returns (name, start value, combining function)."""
    if per_image:
        return "kept one above the threshold", -np.inf, max
    return "r above PyTorch's in every image", np.inf, min


def judge_clap(similarity: np.ndarray, threshold: float, ranks: np.ndarray, own: np.ndarray,
               epsilon: float, per_image: bool = True) -> tuple[int, int, float, str]:
    """(differing, near_boundary, required_epsilon, worst) of CLAP ranks against PyTorch's window
    similarities ``[B, W]`` and ``threshold``; ``own`` = PyTorch's own ranks."""
    rule, start, combine = _r_rule(per_image)
    amounts = {"merged window below the threshold": -np.inf, "kept window above a merged one": -np.inf,
               "merged windows out of order": -np.inf, rule: start}
    near = 0
    for s, rank in zip(similarity, ranks):
        merged = rank >= 0
        kept = s[~merged]
        amounts["merged window below the threshold"] = max(amounts["merged window below the threshold"],
                                                           _largest(threshold - s[merged]))
        amounts["kept window above a merged one"] = max(amounts["kept window above a merged one"],
                                                        _largest(kept) - (s[merged].min() if merged.any() else np.inf))
        amounts["merged windows out of order"] = max(amounts["merged windows out of order"],
                                                     _order_violation(s[np.argsort(np.where(merged, rank, 1 << 30))
                                                                        [:merged.sum()]]))
        amounts[rule] = combine(amounts[rule], _largest(kept - threshold))
        descending = np.sort(s)[::-1]
        relevant = descending >= threshold - epsilon
        near += int((np.abs(s - threshold) < epsilon).sum())
        near += int(((descending[:-1] - descending[1:] < epsilon) & relevant[1:]).sum())
    required, worst = _worst(amounts)
    return int((ranks != own).sum()), near, required, worst


def judge_gbm(scores: np.ndarray, best: np.ndarray, thresholds: np.ndarray, matches: np.ndarray, own: np.ndarray,
              epsilon: float, per_image: bool = True) -> tuple[int, int, float, str]:
    """(differing, near_boundary, required_epsilon, worst) of GBM matches ``[B, n_a]`` against PyTorch's
    scores ``[B, n_a, n_b]``, best scores and adaptive thresholds ``[B]`` (padding A tokens score -inf);
    ``own`` = PyTorch's own matches."""
    rule, start, combine = _r_rule(per_image)
    amounts = {"merged A token below the threshold": -np.inf, "kept A token above a merged one": -np.inf,
               "match not the best B token": -np.inf, rule: start}
    near = 0
    for p, s, match, threshold in zip(scores, best, matches, thresholds):
        merged = match >= 0
        kept = s[1:][~merged[1:]]  # the class token (A[0]) never merges
        amounts["merged A token below the threshold"] = max(amounts["merged A token below the threshold"],
                                                            _largest(threshold - s[merged]))
        amounts["kept A token above a merged one"] = max(amounts["kept A token above a merged one"],
                                                         _largest(kept) - (s[merged].min() if merged.any() else np.inf))
        chosen = p[np.flatnonzero(merged), match[merged]]
        amounts["match not the best B token"] = max(amounts["match not the best B token"],
                                                    _largest(s[merged] - chosen))
        amounts[rule] = combine(amounts[rule], _largest(kept - threshold))
        second = np.sort(p[1:], axis=1)[:, -2] if p.shape[1] > 1 else np.full(len(p) - 1, -np.inf)
        near += int((np.abs(s[1:] - threshold) < epsilon).sum())
        near += int(((s[1:] - second < epsilon) & (s[1:] >= threshold - epsilon)).sum())
    required, worst = _worst(amounts)
    differing = int(((matches != own)[:, 1:]).sum())
    return differing, near, required, worst


def real_tokens(token_map: np.ndarray, length: int) -> torch.Tensor:
    """``[B, length]`` bool: the tokens an image holds (class token and the patch tokens its map reaches);
    the rest of a padded sequence is padding."""
    counts = torch.from_numpy(token_map.max(axis=1) + 2)
    return torch.arange(length)[None, :] < counts[:, None]


def judge_merges(token_maps: np.ndarray, merge_inputs: list[torch.Tensor], algm: ALGMConfig,
                 grid: tuple[int, int], epsilon: float) -> list[MergeJudgement]:
    """Judge each merge of a backend's ``token_maps`` ``[B, merges, N]`` against PyTorch's scores computed on
    ``merge_inputs`` (PyTorch's tokens before each merge, under replay of the backend's earlier merges).

    Raises :class:`MalformedMaps` when the maps are not valid CLAP/GBM results."""
    judgements = []
    for index, x in enumerate(merge_inputs):
        x = x.detach().float().cpu()
        new_map = token_maps[:, index].astype(np.int64)
        if index == 0:
            similarity = window_similarity(x[:, 1:], grid, algm.window).double().numpy()
            slots, _ = local_assignment(x, grid, algm.window, algm.threshold, algm.per_image)
            ranks = clap_ranks(new_map, grid, algm.window, not algm.per_image)
            own = clap_ranks((slots[:, 1:] - 1).numpy(), grid, algm.window)
            result = judge_clap(similarity, algm.threshold, ranks, own, epsilon, algm.per_image)
            kind = "CLAP"
        else:
            layer = algm.layers[index]
            old_map = token_maps[:, index - 1].astype(np.int64)
            if x.shape[1] != int(old_map.max()) + 2:
                raise MalformedMaps(f"merge {index + 1} starts from {x.shape[1]} tokens, the maps say "
                                    f"{int(old_map.max()) + 2}")
            sizes = real_tokens(old_map, x.shape[1]).float() if algm.per_image else None
            valid = sizes > 0 if sizes is not None else None
            scores, _, best, threshold = (t.double().numpy() for t in bipartite_scores(x, layer, valid))
            slots, _ = global_assignment(x, layer, sizes)
            own_map = np.take_along_axis((slots[:, 1:] - 1).numpy(), old_map, axis=1)
            own = gbm_matches(old_map, own_map)
            thresholds = np.broadcast_to(threshold, (x.shape[0],))
            result = judge_gbm(scores, best, thresholds, gbm_matches(old_map, new_map), own, epsilon, algm.per_image)
            kind = "GBM"
        judgements.append(MergeJudgement(index + 1, kind, *result))
    return judgements
