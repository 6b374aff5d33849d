"""Rotary position embeddings (RoFormer, arXiv 2104.09864) over one or more position axes.

With one axis this is Llama's RoPE. With A axes the head's rotation pairs are split into A equal
groups, one per axis (row, column, time, ...): LlamaGen's 2D RoPE gives the first half of the
pairs the row index and the second half the column index. Pairs left over when head_dim / 2 is
not divisible by A are not rotated. Positions may be fractional (the next-scale pattern places a
coarse scale's cells at their centres on the finest grid).

Pairs are interleaved, (x0, x1), (x2, x3), ..., as in Llama's complex-number formulation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Angles for `num_axes`-dimensional positions.

    Args:
        head_dim: width of one attention head (even).
        num_axes: number of position axes (1 for sequences, 2 for images, 3 for video).
        base: frequency base (10000 in Llama and LlamaGen).
    """

    def __init__(self, head_dim: int, num_axes: int = 1, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head width, got {head_dim}")
        pairs = head_dim // 2 // num_axes
        if pairs < 1:
            raise ValueError(f"head width {head_dim} is too small for {num_axes} RoPE axes")
        self.head_dim, self.num_axes = head_dim, num_axes
        # Per axis: base^(-2i / (2 * pairs)) for i < pairs, the Llama frequencies of a head of
        # width 2 * pairs.
        freqs = base ** (-torch.arange(0, 2 * pairs, 2, dtype=torch.float64) / (2 * pairs))
        self.register_buffer("freqs", freqs.float(), persistent=False)

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """positions (L, num_axes) or (L,) -> cos, sin, each (L, head_dim / 2)."""
        if positions.ndim == 1:
            positions = positions[:, None]
        if positions.shape[-1] != self.num_axes:
            raise ValueError(f"expected positions (L, {self.num_axes}), got {tuple(positions.shape)}")
        angles = (positions.float()[:, :, None] * self.freqs).flatten(1)  # (L, num_axes * pairs)
        angles = nn.functional.pad(angles, (0, self.head_dim // 2 - angles.shape[1]))  # unrotated rest
        return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs of x (..., L, D) by angles given as cos, sin (L, D / 2)."""
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)
