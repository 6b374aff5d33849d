"""ConvNeXt blocks for 1-D sequences (Liu et al., arXiv 2201.03545; as used by Vocos, arXiv 2306.00814)
with an optional adaptive LayerNorm whose scale and shift are picked by a conditioning id.

Attribute names follow the Vocos/WavTokenizer code (`dwconv`, `norm`, `pwconv1`, `pwconv2`,
`gamma`; `norm.scale` / `norm.shift` embeddings), so their checkpoints load key-by-key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine weights, then a per-condition scale and shift.

    Args:
        num_embeddings: number of condition ids (WavTokenizer: 4 "bandwidth" ids).
        dim: normalised width.
    Forward: x (B, T, dim), cond_id (B,) or (1,) int64 -> (B, T, dim).
    """

    def __init__(self, num_embeddings: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Embedding(num_embeddings, dim)
        self.shift = nn.Embedding(num_embeddings, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, cond_id: Tensor) -> Tensor:
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        # (B,) ids -> (B, 1, dim) so each batch item gets its own row.
        return x * self.scale(cond_id)[:, None] + self.shift(cond_id)[:, None]


class ConvNeXtBlock1d(nn.Module):
    """Depthwise conv (k7) -> (Ada)LayerNorm -> Linear -> GELU -> Linear -> layer scale -> residual.

    Args:
        dim: channels.
        intermediate_dim: hidden width of the pointwise MLP.
        layer_scale_init_value: initial `gamma`; <= 0 or None disables layer scale (no `gamma` key).
        adanorm_num_embeddings: None for a plain LayerNorm, else the number of condition ids.
    Forward: x (B, dim, T), cond_id needed when adaptive -> (B, dim, T).
    """

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float | None = None, adanorm_num_embeddings: int | None = None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.adaptive = adanorm_num_embeddings is not None
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim) if self.adaptive else nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        if layer_scale_init_value is not None and layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))
        else:
            self.gamma = None

    def forward(self, x: Tensor, cond_id: Tensor | None = None) -> Tensor:
        h = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        if self.adaptive:
            if cond_id is None:
                raise ValueError("this ConvNeXt block uses adaptive LayerNorm: pass cond_id")
            h = self.norm(h, cond_id)
        else:
            h = self.norm(h)
        h = self.pwconv2(self.act(self.pwconv1(h)))
        if self.gamma is not None:
            h = self.gamma * h
        return x + h.transpose(1, 2)
