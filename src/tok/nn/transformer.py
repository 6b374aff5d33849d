"""Pre-norm transformer blocks: plain, and AdaLN-zero conditioned with per-segment modulation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .attention import PrefixCausal, SelfAttention
from .mlp import GatedMLP
from .norm import affine_free_layer_norm


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1.0 + scale) + shift


def expand_segments(per_segment: Tensor, lengths: tuple[int, ...]) -> Tensor:
    """(B, S, C) values for S consecutive segments -> (B, sum(lengths), C), one row per token."""
    if len(lengths) == 1:
        return per_segment
    repeats = torch.tensor(lengths, device=per_segment.device)
    return per_segment.repeat_interleave(repeats, dim=1, output_size=sum(lengths))


class Block(nn.Module):
    """x + attn(norm1(x)); x + mlp(norm2(x)), with affine-free norms."""

    def __init__(self, dim: int, head_dim: int = 64, mlp_hidden_dim: int | None = None, attn_scale: float | None = None):
        super().__init__()
        self.norm1 = affine_free_layer_norm(dim)
        self.attn = SelfAttention(dim, head_dim, scale=attn_scale)
        self.norm2 = affine_free_layer_norm(dim)
        self.mlp = GatedMLP(dim, mlp_hidden_dim)

    def forward(self, x: Tensor, mask: Tensor | PrefixCausal | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class AdaLNBlock(Block):
    """AdaLN-zero block (DiT, arXiv 2212.09748) with one modulation per sequence segment.

    `adaLN_modulation` maps the condition (B, D) to `num_segments` x 6 x D values; segment s
    (e.g. patches, then registers) gets its own gate/shift/scale, chunked in the order
    gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp. Zero-initialised, so every
    block starts as the identity.
    """

    def __init__(self, dim: int, head_dim: int = 64, mlp_hidden_dim: int | None = None, attn_scale: float | None = None, num_segments: int = 1):
        super().__init__(dim, head_dim, mlp_hidden_dim, attn_scale)
        self.num_segments = num_segments
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, num_segments * 6 * dim))
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        nn.init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, x: Tensor, cond: Tensor, lengths: tuple[int, ...], mask: Tensor | PrefixCausal | None = None) -> Tensor:
        """x: (B, L, D) with L = sum(lengths); cond: (B, D)."""
        batch, dim = cond.shape
        mod = self.adaLN_modulation(cond).view(batch, self.num_segments, 6 * dim)
        mod = expand_segments(mod, lengths)  # (B, L, 6D)
        gate_msa, gate_mlp, shift_msa, scale_msa, shift_mlp, scale_mlp = mod.chunk(6, dim=-1)
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa), mask)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
