"""Packed tokens for per-image merging: the Linear layers (qkv, proj, MLP) and LayerNorms of a block run on
the real tokens of all images, ``sum_b T_b`` rows, not ``B x max_b T_b``; only attention works per image,
on the padded layout with a key mask. The pack/unpack index maps come from the merge ops' sizes (0 marks
padding)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a padded ``[B, T, ...]`` tensor sit among ``P = sum_b T_b`` packed rows."""

    rows: torch.Tensor  # [P] int64: the row of the flattened padded tensor [B*T] of each packed token
    slots: torch.Tensor  # [B*T] int64: the packed row of each padded position (padding: the image's class token)
    mask: torch.Tensor  # [B, 1, 1, T] additive attention mask: 0 for real keys, -inf for padding
    batch: int
    length: int

    @classmethod
    def of(cls, sizes: torch.Tensor, dtype: torch.dtype) -> "Packing":
        """The packing of the tokens whose ``sizes`` ``[B, T]`` are non-zero."""
        batch, length = sizes.shape
        valid = sizes > 0
        flat = valid.reshape(-1)
        rows = torch.nonzero(flat).reshape(-1)
        before = torch.cumsum(flat.long(), dim=0) - 1
        # a padding position reads its image's class token (a real row): finite, masked out as a key
        first = before.reshape(batch, length)[:, :1].expand(batch, length).reshape(-1)
        slots = torch.where(flat, before, first)
        zero = torch.zeros((), dtype=dtype, device=sizes.device)
        mask = torch.where(valid, zero, torch.full_like(zero, -torch.inf))[:, None, None, :]
        return cls(rows, slots, mask, batch, length)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C]`` -> ``[1, P, C]``: the real tokens, image after image (kept 3-D so that the Linear
        layers export as MatMul + Add, as in the padded layout, which the INT8 recipe finds)."""
        return x.reshape(1, self.batch * self.length, -1).index_select(1, self.rows)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """``[1, P, C]`` -> ``[B, T, C]``; padding positions hold a copy of their image's class token."""
        return packed.index_select(1, self.slots).reshape(self.batch, self.length, -1)


def packed_attention_half(block: Block, x: torch.Tensor, packing: Packing) -> torch.Tensor:
    """``x + attn(norm1(x))`` for packed tokens ``[1, P, C]``: qkv and proj on the packed rows, the softmax
    attention per image on the padded layout (padding keys masked)."""
    attn = block.attn
    qkv = packing.unpack(attn.qkv(block.norm1(x)))
    batch, length, _ = qkv.shape
    q, k, v = qkv.reshape(batch, length, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=packing.mask)
    out = packing.pack(out.transpose(1, 2).reshape(batch, length, attn.attn_dim))
    return x + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(attn.norm(out)))))
