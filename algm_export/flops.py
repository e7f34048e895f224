"""Analytic FLOP counts of a Segmenter forward pass for given token counts (multiply-adds x 2)."""

from __future__ import annotations

from .config import ALGMConfig, SegmenterConfig


def block_macs(tokens_in: int, tokens_out: int, width: int, hidden: int) -> int:
    """One transformer block; a merge between attention and MLP changes the token count."""
    attention = 4 * tokens_in * width * width + 2 * tokens_in * tokens_in * width
    return attention + 2 * tokens_out * width * hidden


def merge_macs(tokens: int, width: int, first: bool, window: tuple[int, int]) -> int:
    """Similarity maths of a merge: window Gram matrices (CLAP) or the A x B score matrix (GBM)."""
    if first:
        k = window[0] * window[1]
        return (tokens - 1) * k * width
    return (tokens + 1) // 2 * (tokens // 2) * width


def segmenter_flops(config: SegmenterConfig, image_size: tuple[int, int], algm: ALGMConfig | None,
                    token_counts: list[int] | None) -> float:
    """FLOPs of one image through ``config``'s model at ``image_size``, merging to ``token_counts``."""
    d, patch = config.d_model, config.patch_size
    n_patches = (image_size[0] // patch) * (image_size[1] // patch)
    tokens = 1 + int(config.distilled) + n_patches
    macs = n_patches * 3 * patch * patch * d
    merges = dict(zip(algm.layers, token_counts)) if algm and token_counts else {}
    for number in range(1, config.n_layers + 1):
        after = merges.get(number, tokens)
        if number in merges:
            macs += merge_macs(tokens, d, number == algm.layers[0], algm.window)
        macs += block_macs(tokens, after, d, config.d_ff)
        tokens = after
    patch_tokens = tokens - 1 - int(config.distilled)
    if config.decoder == "linear":
        macs += patch_tokens * d * config.n_cls
    else:
        sequence = patch_tokens + config.n_cls
        macs += patch_tokens * d * d + config.decoder_layers * block_macs(sequence, sequence, d, 4 * d)
        macs += sequence * d * d + patch_tokens * config.n_cls * d
    macs += config.n_cls * image_size[0] * image_size[1] * 4
    return 2.0 * macs
