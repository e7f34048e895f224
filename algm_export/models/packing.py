"""Packed tokens for per-image merging: the Linear layers (qkv, proj, MLP), LayerNorms and elementwise ops of a
block run on the real tokens of all images, ``sum_b T_b`` rows, not ``B x max_b T_b``; attention works per image
on its own tokens (:mod:`.attention`). The pack/unpack index maps come from the merge ops' sizes (0 marks
padding); the merges themselves, the final norm and the decoder work on the padded layout."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Packing:
    """Where the real tokens of a padded ``[B, T, ...]`` tensor sit among ``P = sum_b T_b`` packed rows."""

    rows: torch.Tensor  # [P] int64: the row of the flattened padded tensor [B*T] of each packed token
    slots: torch.Tensor  # [B*T] int64: the packed row of each padded position (padding: the image's class token)
    lengths: torch.Tensor  # [B] int64: each image's real token count T_b
    batch: int
    length: int

    @classmethod
    def of(cls, sizes: torch.Tensor) -> "Packing":
        """The packing of the tokens whose ``sizes`` ``[B, T]`` are non-zero."""
        batch, length = sizes.shape
        valid = sizes > 0
        flat = valid.reshape(-1)
        rows = torch.nonzero(flat).reshape(-1)
        before = torch.cumsum(flat.long(), dim=0) - 1
        # a padding position reads its image's class token (a real row): finite; the merges ignore it (size 0)
        first = before.reshape(batch, length)[:, :1].expand(batch, length).reshape(-1)
        slots = torch.where(flat, before, first)
        return cls(rows, slots, valid.sum(dim=1), batch, length)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C]`` -> ``[1, P, C]``: the real tokens, image after image (kept 3-D so that the Linear
        layers export as MatMul + Add, as in the padded layout, which the INT8 recipe finds)."""
        return x.reshape(1, self.batch * self.length, -1).index_select(1, self.rows)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """``[1, P, C]`` -> ``[B, T, C]``; padding positions hold a copy of their image's class token."""
        return packed.index_select(1, self.slots).reshape(self.batch, self.length, -1)

