"""Position and time embeddings."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn


def sincos_2d(height: int, width: int, dim: int, temperature: float = 10000.0) -> Tensor:
    """Fixed 2D sine-cosine embedding (MoCo v3), shape (1, dim, height, width).

    Channel blocks are [sin(w), cos(w), sin(h), cos(h)], each dim/4 wide; the grid is built with
    `meshgrid(w, h, indexing="ij")` and read back as (h w), the order FlexTok's stored tables use.
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a width divisible by 4, got {dim}")
    grid_w, grid_h = torch.meshgrid(
        torch.arange(width, dtype=torch.float32), torch.arange(height, dtype=torch.float32), indexing="ij"
    )
    omega = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    out_w = grid_w.reshape(-1, 1) * omega
    out_h = grid_h.reshape(-1, 1) * omega
    table = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)
    return rearrange(table, "(h w) d -> 1 d h w", h=height, w=width).contiguous()


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of a scalar time, then Linear -> SiLU -> Linear (DiT).

    Args:
        dim: output width.
        frequency_dim: number of sinusoidal features.
        max_timestep: the largest t the caller passes; t is rescaled by 1000 / max_timestep so
            the frequencies match DiT's integer timesteps.
        max_period: controls the lowest frequency.
    """

    def __init__(self, dim: int, frequency_dim: int = 256, max_timestep: float = 1.0, max_period: float = 256.0):
        super().__init__()
        self.frequency_dim, self.max_timestep, self.max_period = frequency_dim, max_timestep, max_period
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def features(self, t: Tensor) -> Tensor:
        half = self.frequency_dim // 2
        freqs = (1000.0 / self.max_timestep) * torch.exp(
            -math.log(self.max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
        )
        args = t.float()[:, None] * freqs[None]
        features = torch.cat([args.cos(), args.sin()], dim=-1)
        if self.frequency_dim % 2:
            features = torch.cat([features, torch.zeros_like(features[:, :1])], dim=-1)
        return features

    def forward(self, t: Tensor) -> Tensor:
        """t: (B,) times in [0, max_timestep] -> (B, dim)."""
        return self.mlp(self.features(t).to(self.mlp[0].weight.dtype))
