"""GroupNorm ResNet and single-head self-attention blocks over 1-D sequences (the "pos_net" of
WavTokenizer's decoder, taken from the LDM/VQGAN conv blocks).

Attribute names (`norm1`, `conv1`, `norm2`, `conv2`, `nin_shortcut`; `norm`, `q`, `k`, `v`,
`proj_out`) match the official code so checkpoints load key-by-key.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock1d(nn.Module):
    """GroupNorm -> SiLU -> conv k3 -> GroupNorm -> SiLU -> dropout -> conv k3, plus a shortcut.

    Forward: (B, C_in, T) -> (B, C_out, T). The shortcut is a 1x1 conv only when widths differ.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = nn.Conv1d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock1d(nn.Module):
    """GroupNorm -> 1x1-conv q, k, v -> single-head softmax attention over all time steps
    (scale C^-0.5, SDPA) -> 1x1-conv projection, residual. Forward: (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv1d(channels, channels, kernel_size=1)
        self.k = nn.Conv1d(channels, channels, kernel_size=1)
        self.v = nn.Conv1d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv1d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        q, k, v = (proj(h).transpose(1, 2)[:, None] for proj in (self.q, self.k, self.v))  # (B, 1, T, C)
        out = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2)
        return x + self.proj_out(out)
