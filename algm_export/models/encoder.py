"""Segmenter's ViT encoder: a timm VisionTransformer run block by block, with ALGM merges inside blocks."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import Block, VisionTransformer

from ..config import ALGMConfig, SegmenterConfig
from ..merging.ops import global_merge, local_merge, replay_merge
from .attention import packed_attention_half
from .packing import Packing

# Per-image rule: after the first merge the blocks run on the packed real tokens of all images, attention on
# each image's own tokens (True), or on the tokens padded to the longest image with padding keys masked
# (False: the reference layout the tests compare with).
PACK_TOKENS = True


def build_vit(config: SegmenterConfig) -> VisionTransformer:
    """A timm ViT whose parameter names and LayerNorm eps (1e-5) match Segmenter's research checkpoints."""
    vit_class = VisionTransformerDistilled if config.distilled else VisionTransformer
    vit = vit_class(
        img_size=config.image_size,
        patch_size=config.patch_size,
        embed_dim=config.d_model,
        depth=config.n_layers,
        num_heads=config.n_heads,
        mlp_ratio=config.d_ff / config.d_model,
        qkv_bias=True,
        num_classes=config.encoder_head_classes,
        norm_layer=nn.LayerNorm,
    )
    vit.patch_embed.strict_img_size = False
    return vit


def resize_pos_embed(pos_embed: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                     num_prefix: int) -> torch.Tensor:
    """Bilinearly resize the grid part of ``pos_embed`` [1, prefix+N, C] from ``old_grid`` to ``new_grid``."""
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    grid = grid.reshape(1, old_grid[0], old_grid[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_grid, mode="bilinear", align_corners=False)
    return torch.cat([prefix, grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], -1)], dim=1)


def attention_half(block: Block, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """First residual half of a timm block: ``x + attn(norm1(x))`` (``attn_mask``: see :func:`padding_mask`)."""
    return x + block.drop_path1(block.ls1(block.attn(block.norm1(x), attn_mask=attn_mask)))


def padding_mask(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``[B, 1, 1, T]`` from ``valid`` ``[B, T]`` (False: a padding token): 0 for
    real keys, -inf for padding keys, so a real token attends exactly the tokens of its own image."""
    zero = torch.zeros((), dtype=dtype, device=valid.device)
    return torch.where(valid, zero, torch.full_like(zero, -torch.inf))[:, None, None, :]


def mlp_half(block: Block, x: torch.Tensor) -> torch.Tensor:
    """Second residual half of a timm block: ``x + mlp(norm2(x))``."""
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def encode(
    vit: VisionTransformer, images: torch.Tensor, train_grid: tuple[int, int], algm: ALGMConfig | None,
    replay_maps: torch.Tensor | None = None, merge_inputs: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list, list]:
    """Run ``vit`` on ``images`` (sides multiples of the patch size), merging tokens where ``algm`` says.

    Merges run between the attention residual and the MLP of the selected blocks: CLAP in the first,
    GBM in the others. ``replay_maps`` [B, merges, N], when given, dictates the merge decisions instead
    (see :func:`replay_merge`). ``merge_inputs``, when given, receives the tokens each merge starts from
    (what its decisions are computed on, e.g. to judge another backend's decisions).

    With ``algm.per_image`` the images keep their own token counts: tokens are padded to the longest image
    and attention ignores padding keys, so each image's result is its batch-1 result. Returns the normalized
    tokens ``[B, prefix + M, C]``, the patch->token map ``[B, N]`` after each merge, the per-image token
    count ``[B]`` after each merge and the mask of real tokens ``[B, prefix + M]`` (None: no merge).
    """
    patch = vit.patch_embed.patch_size
    grid = (images.shape[2] // patch[0], images.shape[3] // patch[1])
    patches = vit.patch_embed(images)
    prefix = [vit.cls_token.expand(patches.shape[0], -1, -1)]
    if getattr(vit, "dist_token", None) is not None:
        prefix.append(vit.dist_token.expand(patches.shape[0], -1, -1))
    x = torch.cat(prefix + [patches], dim=1)
    x = vit.pos_drop(x + resize_pos_embed(vit.pos_embed, train_grid, grid, vit.num_prefix_tokens))
    x = vit.norm_pre(x)

    merge_layers = algm.layers if algm is not None else ()
    sizes = token_map = mask = packing = None
    maps, counts = [], []
    for number, block in enumerate(vit.blocks, start=1):
        x = attention_half(block, x, mask) if packing is None else packed_attention_half(block, x, packing)
        if number not in merge_layers:
            x = mlp_half(block, x)
            continue
        if packing is not None:
            x = packing.unpack(x)
        if merge_inputs is not None:
            merge_inputs.append(x)
        if replay_maps is not None:
            new_map = replay_maps[:, len(maps)]
            x, sizes = replay_merge(x, sizes, token_map, new_map)
            token_map = new_map
        elif token_map is None:
            x, sizes, token_map = local_merge(x, grid[0], grid[1], algm.window[0], algm.window[1], algm.threshold,
                                              algm.per_image)
        else:
            x, sizes, token_map = global_merge(x, sizes, token_map, number, algm.per_image)
        valid = sizes > 0
        if algm.per_image and PACK_TOKENS:
            packing = Packing.of(sizes)
            x = packing.pack(x)
        elif algm.per_image:
            mask = padding_mask(valid, x.dtype)
        x = mlp_half(block, x)
        maps.append(token_map)
        counts.append(valid.sum(dim=1))
    x = vit.norm(x)  # on the packed rows, if packed
    if packing is not None:
        x = packing.unpack(x)
    return x, maps, counts, valid if maps else None
