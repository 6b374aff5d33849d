"""The multi-scale token layout of HieraTok as fixed index tables, built once per model.

Everything a forward pass needs about the scales is a matrix or an index tensor, so the hot
path has no Python loop over scales:

- `area_pool_matrix`: (L, N) weights that turn the finest map (N tokens) into every scale at
  once (area pooling = mean over the finest tokens a coarse token covers).
- `prefix_fill_index`: (S, L) gather indices; row k-1 completes a k-scale prefix to the full
  sequence by giving each token of a finer scale the latent of the scale-k token that covers it
  (nearest upsampling), which is how coarse prefixes are decoded.

The tables are built on the CPU (also under a meta default device) and move with the module.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ...nn.embeddings import sincos_2d
from ...nn.masks import segment_ids


def _grid_coords(side: int) -> tuple[Tensor, Tensor]:
    rows, cols = torch.meshgrid(torch.arange(side, device="cpu"), torch.arange(side, device="cpu"), indexing="ij")
    return rows.flatten(), cols.flatten()


def area_pool_matrix(scales: tuple[int, ...], grid: int) -> Tensor:
    """(sum s^2, grid^2) row-stochastic matrix: pyramid = matrix @ finest_tokens (rows first)."""
    rows, cols = _grid_coords(grid)
    blocks = []
    for side in scales:
        ratio = grid // side
        parent = (rows // ratio) * side + cols // ratio
        blocks.append(torch.nn.functional.one_hot(parent, side * side).T.float() / ratio**2)
    return torch.cat(blocks)


def prefix_fill_index(scales: tuple[int, ...]) -> Tensor:
    """(S, L) long: row k-1 maps each sequence position to the position it reads when only the
    first k scales are known (itself for scales <= k, else its covering token at scale k)."""
    offsets = [0]
    for side in scales:
        offsets.append(offsets[-1] + side * side)
    table = torch.empty(len(scales), offsets[-1], dtype=torch.long, device="cpu")
    for k, side_k in enumerate(scales):
        for t, side_t in enumerate(scales):
            rows, cols = _grid_coords(side_t)
            if t <= k:
                source = offsets[t] + torch.arange(side_t * side_t, device="cpu")
            else:
                source = offsets[k] + (rows * side_k // side_t) * side_k + cols * side_k // side_t
            table[k, offsets[t] : offsets[t + 1]] = source
    return table


class ScaleEmbedding(nn.Module):
    """Adds a learned per-scale vector and a 2D position embedding at each scale's own resolution.

    `position`: "sincos" (fixed, not stored in checkpoints) or "learned" (`pos_embed`, (L, D)).
    """

    def __init__(self, dim: int, scales: tuple[int, ...], position: str = "sincos"):
        super().__init__()
        self.scale_embed = nn.Parameter(torch.randn(len(scales), dim) * 0.02)
        self.register_buffer("scale_index", segment_ids([s * s for s in scales]), persistent=False)
        with torch.device("cpu"):  # fixed tables: cheap on the CPU also under a meta default device
            table = torch.cat([rearrange(sincos_2d(s, s, dim), "1 d h w -> (h w) d") for s in scales])
        if position == "learned":
            self.pos_embed = nn.Parameter(torch.randn_like(table) * 0.02)
        else:
            self.register_buffer("pos_embed", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, D) tokens of all scales, coarse to fine."""
        return x + (self.scale_embed[self.scale_index] + self.pos_embed).to(x.dtype)
