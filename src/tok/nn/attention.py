"""Multi-head self-attention on PyTorch SDPA, with optional QK-norm and a boolean mask."""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .norm import affine_free_layer_norm


class SelfAttention(nn.Module):
    """Self-attention with separate q/k/v projections (`wq`, `wk`, `wv`, `proj`).

    Args:
        dim: model width; heads = dim // head_dim.
        head_dim: width of one head.
        qk_norm: affine-free LayerNorm on per-head queries and keys (FlexTok, ViT-22B).
        scale: softmax scale; None gives 1/sqrt(head_dim). FlexTok uses the muP-style 8/head_dim.
        bias: biases on the projections.
    """

    def __init__(self, dim: int, head_dim: int = 64, *, qk_norm: bool = True, scale: float | None = None, bias: bool = False):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"width {dim} is not a multiple of the head width {head_dim}")
        self.num_heads = dim // head_dim
        self.scale = scale
        self.wq = nn.Linear(dim, dim, bias=bias)
        self.wk = nn.Linear(dim, dim, bias=bias)
        self.wv = nn.Linear(dim, dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.q_norm = affine_free_layer_norm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = affine_free_layer_norm(head_dim) if qk_norm else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: (B, L, D); mask: (L, L) or (B, 1, L, L) boolean, True where a query may attend a key."""
        split = "b l (h d) -> b h l d"
        q = self.q_norm(rearrange(self.wq(x), split, h=self.num_heads))
        k = self.k_norm(rearrange(self.wk(x), split, h=self.num_heads))
        v = rearrange(self.wv(x), split, h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))
