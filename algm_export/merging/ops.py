"""The ``algm`` custom ops: local_merge, global_merge, unmerge.

Registered with ``torch.library.custom_op`` so that eager PyTorch runs them (CPU and CUDA, through the
plain tensor code below) and ``torch.export`` / the dynamo ONNX exporter see each as ONE op whose token
count is data-dependent (declared in the fake implementations with ``new_dynamic_size``).

Tensor contract (B images, T tokens with the class token first, N = grid_h * grid_w patches):

* ``local_merge(x[B,T,C], grid_h, grid_w, window_h, window_w, threshold, per_image)``
  -> ``(x'[B,T',C], sizes[B,T'] float32, token_map[B,N] int32)``
* ``global_merge(x[B,T,C], sizes[B,T] float32, token_map[B,N] int32, layer_number, per_image)``
  -> ``(x'[B,T',C], sizes'[B,T'] float32, token_map'[B,N] int32)``
* ``unmerge(values[B,T-1,K], token_map[B,N] int32)`` -> ``[B,N,K]``

``token_map[b, p]`` is the index, among the patch tokens (class token excluded), of the token that holds
patch ``p``; merged tokens are size-weighted means of their members and ``sizes`` counts members.

With ``per_image`` each image keeps its own token count T'_b = max(token_map[b]) + 2 = the number of its
tokens with a non-zero size: the outputs are padded to T' = max_b T'_b with zero tokens of size 0. Padding
tokens (size 0) in an input are ignored. With the published rule (``per_image`` False) all images share one
count and nothing is padded.
"""

from __future__ import annotations

import torch

from .assignment import global_assignment, local_assignment

MAP_DTYPE = torch.int32


def scatter_mean(
    x: torch.Tensor, sizes: torch.Tensor, slots: torch.Tensor, n_out: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size-weighted mean of the rows of ``x`` [B,T,C] grouped by ``slots`` [B,T] into ``n_out`` rows.

    Accumulates in float32; returns (means in ``x.dtype`` [B,n_out,C], summed sizes float32 [B,n_out]).
    A slot nothing lands in (padding) gets a zero row of size 0.
    """
    batch, tokens, channels = x.shape
    flat_slots = (slots + n_out * torch.arange(batch, device=x.device)[:, None]).reshape(-1)
    weighted = (x.float() * sizes[..., None]).reshape(batch * tokens, channels)
    sums = torch.zeros(batch * n_out, channels, device=x.device).index_add_(0, flat_slots, weighted)
    new_sizes = torch.zeros(batch * n_out, device=x.device).index_add_(0, flat_slots, sizes.reshape(-1))
    means = (sums / new_sizes.clamp(min=1.0)[:, None]).reshape(batch, n_out, channels).to(x.dtype)
    return means, new_sizes.reshape(batch, n_out)


def replay_merge(
    x: torch.Tensor, sizes: torch.Tensor | None, token_map: torch.Tensor | None, new_map: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a merge whose decisions are given instead of computed: ``new_map`` is the patch->token map
    after it, ``token_map`` the map before (None before the first merge), ``sizes`` likewise.

    A merge is fully determined by the two maps (every token holds at least one patch), so this replays
    another backend's merge decisions in PyTorch, image by image: each image gets max(new_map[b]) + 2 tokens,
    padded to the longest (padding: size 0). Returns (merged tokens, sizes).
    """
    batch = x.shape[0]
    if token_map is None:
        token_map = torch.arange(new_map.shape[1], device=x.device).expand(batch, -1)
        sizes = torch.ones(x.shape[:2], device=x.device)
    slots = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
    slots.scatter_(1, token_map.long() + 1, new_map.long() + 1)
    return scatter_mean(x, sizes, slots, int(new_map.max()) + 2)


def _patch_slots(slots: torch.Tensor) -> torch.Tensor:
    """Output patch-token index of each input patch token (slots without the class token, minus one)."""
    return slots[:, 1:] - 1


@torch.library.custom_op("algm::local_merge", mutates_args=())
def local_merge(
    x: torch.Tensor, grid_h: int, grid_w: int, window_h: int, window_w: int, threshold: float, per_image: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CLAP: merge the most similar ``window_h x window_w`` windows of the patch grid (see module doc)."""
    if x.shape[1] != 1 + grid_h * grid_w:
        raise ValueError(f"local_merge: {x.shape[1]} tokens do not match 1 + {grid_h}x{grid_w} patches")
    if grid_h % window_h or grid_w % window_w:
        raise ValueError(f"local_merge: window {window_h}x{window_w} does not tile the {grid_h}x{grid_w} grid")
    with torch.no_grad():
        slots, counts = local_assignment(x, (grid_h, grid_w), (window_h, window_w), threshold, per_image)
        ones = torch.ones(x.shape[:2], device=x.device)
        merged, sizes = scatter_mean(x, ones, slots, int(counts.max()))
    return merged, sizes, _patch_slots(slots).to(MAP_DTYPE)


@torch.library.custom_op("algm::global_merge", mutates_args=())
def global_merge(
    x: torch.Tensor, sizes: torch.Tensor, token_map: torch.Tensor, layer_number: int, per_image: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GBM: bipartite merging with the adaptive threshold of layer ``layer_number`` (see module doc)."""
    with torch.no_grad():
        slots, counts = global_assignment(x, layer_number, sizes if per_image else None)
        merged, new_sizes = scatter_mean(x, sizes, slots, int(counts.max()))
        new_map = _patch_slots(slots).gather(1, token_map.long())
    return merged, new_sizes, new_map.to(MAP_DTYPE)


@torch.library.custom_op("algm::unmerge", mutates_args=())
def unmerge(values: torch.Tensor, token_map: torch.Tensor) -> torch.Tensor:
    """Spread per-token ``values`` [B,M,K] back onto the patch grid: ``out[b,p] = values[b, token_map[b,p]]``."""
    index = token_map.long()[..., None].expand(-1, -1, values.shape[-1])
    return values.gather(1, index)


def _merged_shapes(x: torch.Tensor, n_patches: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n_out = torch.library.get_ctx().new_dynamic_size(min=2, max=1 + n_patches)
    batch, _, channels = x.shape
    return (
        x.new_empty(batch, n_out, channels),
        x.new_empty(batch, n_out, dtype=torch.float32),
        x.new_empty(batch, n_patches, dtype=MAP_DTYPE),
    )


@local_merge.register_fake
def _local_merge_fake(x, grid_h, grid_w, window_h, window_w, threshold, per_image):
    return _merged_shapes(x, grid_h * grid_w)


@global_merge.register_fake
def _global_merge_fake(x, sizes, token_map, layer_number, per_image):
    return _merged_shapes(x, token_map.shape[1])


@unmerge.register_fake
def _unmerge_fake(values, token_map):
    return values.new_empty(values.shape[0], token_map.shape[1], values.shape[2])
