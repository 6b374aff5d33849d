"""Multi-head self-attention on PyTorch SDPA, with optional QK-norm and a boolean mask or a
mask-free pattern (`PrefixCausal`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.nn.attention.bias import causal_lower_right

from .norm import affine_free_layer_norm


@dataclass(frozen=True)
class PrefixCausal:
    """The first `prefix` tokens attend among themselves; each later token attends to the whole
    prefix and to the later tokens up to itself (FlexTok's encoder: patches, then registers; the
    official `causal_last` mask).

    Run as two SDPA calls without a mask tensor: the prefix unmasked, the rest against every key
    with a bottom-right causal bias. Both are forms the fused (flash) kernels take on GPU, where a
    dense boolean mask sends SDPA to a slower kernel; on CPU it is the same arithmetic minus the
    masked prefix-to-rest block.
    """

    prefix: int

    def attend(self, q: Tensor, k: Tensor, v: Tensor, scale: float | None = None) -> Tensor:
        """q, k, v: (B, H, L, d) -> (B, H, L, d)."""
        p = self.prefix
        head = F.scaled_dot_product_attention(q[:, :, :p], k[:, :, :p], v[:, :, :p], scale=scale)
        rest = _lower_right_causal(q.shape[2] - p, k.shape[2], q.device)
        tail = F.scaled_dot_product_attention(q[:, :, p:], k, v, attn_mask=rest, scale=scale)
        return torch.cat([head, tail], dim=2)


def _lower_right_causal(queries: int, keys: int, device: torch.device) -> Tensor:
    """The bottom-right causal bias SDPA's fused kernels accept, or, where torch cannot create that
    tensor subclass (inside a tensor dispatch mode such as `FlopCounterMode`, torch 2.11), the same
    pattern as a boolean mask."""
    try:
        return causal_lower_right(queries, keys)
    except RuntimeError:
        return torch.ones(queries, keys, dtype=torch.bool, device=device).tril(keys - queries)


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

    def forward(self, x: Tensor, mask: Tensor | PrefixCausal | None = None) -> Tensor:
        """x: (B, L, D); mask: (L, L) or (B, 1, L, L) boolean, True where a query may attend a
        key, an additive float bias broadcastable to (B, H, L, L) (e.g. a per-key (1, L)), or a
        `PrefixCausal` pattern."""
        split = "b l (h d) -> b h l d"
        q = self.q_norm(rearrange(self.wq(x), split, h=self.num_heads))
        k = self.k_norm(rearrange(self.wk(x), split, h=self.num_heads))
        v = rearrange(self.wv(x), split, h=self.num_heads)
        if isinstance(mask, PrefixCausal):
            out = mask.attend(q, k, v, self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))
