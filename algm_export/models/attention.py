"""Attention on each image's real tokens only, for the packed layout of the per-image rule.

After the first merge the images of a batch keep their own token counts; their real tokens are packed image
after image (``[1, P, C]``, ``P = sum_b T_b``: :mod:`.packing`). ``algm::packed_attention`` runs the softmax
attention of each image on its own ``T_b`` tokens, so a batch mixing a busy photo with flat ones computes
``sum_b T_b^2`` attention scores, not ``B x max_b T_b^2``. Eager PyTorch loops over the images; the ONNX
export writes one node that :mod:`algm_export.export.attention` expands into an ONNX ``Loop`` over the
images (the portable graph) or into the padded, key-masked form (the TensorRT graph).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from .packing import Packing


@torch.library.custom_op("algm::packed_attention", mutates_args=())
def packed_attention(qkv: torch.Tensor, lengths: torch.Tensor, num_heads: int, scale: float) -> torch.Tensor:
    """Softmax attention per image of packed ``qkv`` ``[1, P, 3C]`` (q, k, v each ``num_heads x C/num_heads``,
    timm's layout) whose images hold ``lengths`` ``[B]`` int64 consecutive rows: ``[1, P, C]``."""
    channels = qkv.shape[-1] // 3
    parts, start = [], 0
    for length in lengths.tolist():
        q, k, v = qkv[0, start:start + length].reshape(length, 3, num_heads, -1).permute(1, 2, 0, 3).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)  # [heads, length, head_dim]
        parts.append(out.transpose(0, 1).reshape(length, channels))
        start += length
    return torch.cat(parts)[None]


@packed_attention.register_fake
def _packed_attention_fake(qkv, lengths, num_heads, scale):
    return qkv.new_empty(qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3)


def packed_attention_half(block: Block, x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """``x + attn(norm1(x))`` for packed tokens ``[1, P, C]``: qkv and proj on the packed rows, the softmax
    attention of each image on its own tokens (no padding anywhere)."""
    attn = block.attn
    if not (isinstance(attn.q_norm, torch.nn.Identity) and isinstance(attn.k_norm, torch.nn.Identity)):
        raise ValueError("packed attention supports timm blocks without q/k normalization (Segmenter's ViTs)")
    out = packed_attention(attn.qkv(block.norm1(x)), packing.lengths, attn.num_heads, attn.scale)
    return x + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(attn.norm(out)))))
