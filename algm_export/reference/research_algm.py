"""Restatement of the published ALGM algorithm (tue-mps/algm-segmenter), independent of
``algm_export.merging``: gather/scatter_reduce merges, size-weighted averages through ``x * size``,
a one-hot source matrix [B, tokens, 1+N] merged with ``amax``, and the unmerge by ``argmax`` over it.

Differences from the published code, all deliberate: non-square grids are allowed, ties in
similarity are broken by a stable sort (lower index first) where the original leaves them unspecified,
and no ``.cuda()`` calls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def conditional_pooling(x, threshold, window, grid):
    """CLAP on x [B, 1+N, C]; returns merge(x, mode)."""
    wh, ww = window
    k = wh * ww
    feat = x[:, 1:, :]
    b, n, c = feat.shape
    gh, gw = grid[0] // wh, grid[1] // ww
    windows = feat.reshape(b, gh, wh, gw, ww, c).permute(0, 1, 3, 5, 2, 4).reshape(b, gh, gw, c, k)
    sims = F.cosine_similarity(windows.unsqueeze(-1), windows.unsqueeze(-2), dim=3)
    sims = sims * (1 - torch.eye(k))
    similarity_map = (sims.sum(-1).sum(-1) / (k * (k - 1))).reshape(b, -1)
    r = int(torch.ge(similarity_map, threshold).sum(dim=1).min())
    chosen = torch.sort(similarity_map, dim=-1, descending=True, stable=True).indices[:, :r]

    positions = torch.arange(n).reshape(grid[0], grid[1]).unsqueeze(0).repeat(b, 1, 1)
    windowed = positions.unfold(1, wh, wh).unfold(2, ww, ww).reshape(b, -1, k)
    gathered = torch.gather(windowed, 1, chosen.unsqueeze(-1).expand(-1, -1, k))
    mask = torch.ones(b, windowed.shape[1], dtype=torch.bool)
    mask.scatter_(1, chosen, torch.zeros_like(chosen, dtype=torch.bool))
    remaining = windowed[mask.unsqueeze(-1).expand(-1, -1, k)].reshape(b, -1, k)
    unm_idx = remaining.reshape(b, -1).sort(dim=-1).values.unsqueeze(-1)
    src_idx = gathered[:, :, : k - 1].reshape(b, -1).unsqueeze(-1)
    dst_idx = gathered[:, :, k - 1].reshape(b, -1).unsqueeze(-1)
    merge_idx = torch.arange(r).repeat_interleave(k - 1).repeat(b, 1).unsqueeze(-1)

    def merge(t, mode):
        cls, rest = t[:, :1, :], t[:, 1:, :]
        nb, t1, ch = rest.shape
        src = rest.gather(1, src_idx.expand(nb, r * (k - 1), ch))
        dst = rest.gather(1, dst_idx.expand(nb, r, ch))
        unm = rest.gather(1, unm_idx.expand(nb, t1 - r * k, ch))
        dst = dst.scatter_reduce(1, merge_idx.expand(nb, r * (k - 1), ch), src, reduce=mode)
        return torch.cat([cls, dst, unm], dim=1)

    return merge


def bipartite_matching(metric, layer_idx):
    """GBM on metric [B, T, C] (class token first); returns merge(x, mode)."""
    metric = metric / metric.norm(dim=-1, keepdim=True)
    a, b = metric[..., ::2, :], metric[..., 1::2, :]
    scores = a @ b.transpose(-1, -2)
    scores[..., 0, :] = -math.inf
    node_max, node_idx = scores.max(dim=-1)
    edge_idx = torch.sort(node_max, dim=-1, descending=True, stable=True).indices[..., None]
    rest = node_max[:, 1:]
    threshold = rest.mean(dim=1).mean() + rest.std(dim=1).mean() / layer_idx
    r = int(torch.ge(node_max, threshold).sum(dim=1).min())
    unm_idx = edge_idx[..., r:, :].sort(dim=1)[0]
    src_idx = edge_idx[..., :r, :]
    dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)

    def merge(t, mode):
        src, dst = t[..., ::2, :], t[..., 1::2, :]
        n, t1, c = src.shape
        unm = src.gather(-2, unm_idx.expand(n, t1 - r, c))
        src = src.gather(-2, src_idx.expand(n, r, c))
        dst = dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce=mode)
        return torch.cat([unm, dst], dim=1)

    return merge


def merge_wavg(merge, x, size):
    """Size-weighted average merge, as published."""
    x = merge(x * size, "sum")
    size = merge(size, "sum")
    return x / size, size


def merge_source(merge, x, source):
    """One-hot source tracking, as published."""
    if source is None:
        n, t, _ = x.shape
        source = torch.eye(t)[None].expand(n, t, t)
    return merge(source, "amax")


@torch.no_grad()
def reference_forward(model, images, algm):
    """Logits and token counts of ``model`` (an algm_export Segmenter) computed the published way."""
    vit, decoder, config = model.encoder, model.decoder, model.config
    batch, _, height, width = images.shape
    patch = config.patch_size
    grid = (height // patch, width // patch)
    x = vit.patch_embed.proj(images).flatten(2).transpose(1, 2)
    x = torch.cat([vit.cls_token.expand(batch, -1, -1), x], dim=1) + vit.pos_embed
    size = source = None
    counts = []
    for number, block in enumerate(vit.blocks, start=1):
        if algm is None or number not in algm.layers:
            x = x + block.attn(block.norm1(x))
            x = x + block.mlp(block.norm2(x))
            continue
        x = x + block.attn(block.norm1(x))
        if size is None:
            size = torch.ones_like(x[..., 0, None])
        if source is None:
            merge = conditional_pooling(x, algm.threshold, algm.window, grid)
        else:
            merge = bipartite_matching(x, number)
        source = merge_source(merge, x, source)
        x, size = merge_wavg(merge, x, size)
        x = x + block.mlp(block.norm2(x))
        counts.append(x.shape[1])
    x = vit.norm(x)
    scores = decoder(x[:, 1:])
    if source is not None:
        owner = source[:, 1:, 1:].argmax(dim=1)
        scores = torch.stack([scores[i, owner[i]] for i in range(batch)])
    masks = scores.transpose(1, 2).reshape(batch, -1, grid[0], grid[1])
    return F.interpolate(masks, size=(height, width), mode="bilinear"), counts
