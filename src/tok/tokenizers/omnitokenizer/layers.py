"""OmniTokenizer's transformer layers, with the official attribute names so checkpoint keys line up.

A `Transformer` layer is a 4-slot ModuleList [PEG | None, attention, None (cross-attention,
unused), FeedForward], hence keys like `layers.2.1.qkv.weight` and `layers.0.3.1.weight`.
Two attention paths exist: "sdpa" (what the release code runs on torch >= 2.1, which drops the
continuous relative bias and ALiBi) and "explicit" (the paper's path, which applies both).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class LayerNorm(nn.Module):
    """LayerNorm with a learnable `gamma` and a zero `beta` buffer (saved, never trained)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class PEG(nn.Module):
    """Position generator: depthwise 3x3x3 conv over the (B, T, H, W) token volume, zero padded,
    with causal (2, 0) padding in time.

    The official code reshapes the flat tokens straight to (B, T, H, W, D). For spatial layers
    the tokens are ((B T), (H W), D) and this is the true volume; for temporal layers they are
    ((B H W), T, D), so the same reshape reads a scrambled volume. The checkpoints were trained
    that way, so it is reproduced as is.
    """

    def __init__(self, dim: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.dsconv = nn.Conv3d(dim, dim, 3, groups=dim)

    def forward(self, x: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
        volume = x.reshape(*shape, -1).permute(0, 4, 1, 2, 3)  # B D T H W
        time_pad = (2, 0) if self.causal else (1, 1)
        volume = self.dsconv(F.pad(volume, (1, 1, 1, 1, *time_pad)))
        return volume.permute(0, 2, 3, 4, 1).reshape(x.shape)


class ContinuousPositionBias(nn.Module):
    """Relative position bias from an MLP over log-spaced 2D offsets (SwinV2, arXiv 2111.09883)."""

    def __init__(self, dim: int, heads: int, layers: int = 2):
        super().__init__()
        self.net = nn.ModuleList([nn.Sequential(nn.Linear(2, dim), nn.LeakyReLU(0.1))])
        for _ in range(layers - 1):
            self.net.append(nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1)))
        self.net.append(nn.Linear(dim, heads))

    def forward(self, height: int, width: int) -> Tensor:
        """-> (heads, N, N) with N = height * width."""
        device = self.net[-1].weight.device
        grid = torch.stack(torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij"))
        grid = rearrange(grid, "c h w -> (h w) c")
        rel = (grid[:, None] - grid[None]).float()
        rel = torch.sign(rel) * torch.log(rel.abs() + 1)
        for layer in self.net:
            rel = layer(rel.to(self.net[-1].weight.dtype))
        return rearrange(rel, "i j h -> h i j")


def alibi_slopes(heads: int) -> Tensor:
    """ALiBi slopes (Press et al., arXiv 2108.12409), for any head count."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(heads).is_integer():
        return torch.tensor(power_of_2(heads))
    closest = 2 ** math.floor(math.log2(heads))
    return torch.tensor(power_of_2(closest) + power_of_2(2 * closest)[0::2][: heads - closest])


def rope_2d_angles(num_tokens: int, head_dim: int, theta: float = 10000.0, device=None) -> Tensor:
    """Rotation angles (N, head_dim / 2) of the official 2D RoPE on a square grid of N tokens:
    pair 2i turns with the x position at frequency i, pair 2i + 1 with the y position."""
    side = int(num_tokens**0.5)
    pos = torch.arange(num_tokens, device=device)
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim))
    x_angles = torch.outer((pos % side).float(), freqs)
    y_angles = torch.outer((pos // side).float(), freqs)
    return torch.stack([x_angles, y_angles], dim=-1).reshape(num_tokens, -1)


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate consecutive pairs of x (B, N, heads, head_dim) by angles (N, head_dim / 2), in fp32."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    even, odd = pairs.unbind(-1)
    cos, sin = angles.cos()[None, :, None], angles.sin()[None, :, None]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).type_as(x)


class Attention(nn.Module):
    """Cosine-similarity self-attention (pre-norm on queries only): l2-normalised q, k times learnable per-dim
    `q_scale`, `k_scale`, logits scaled by 8, optional 2D RoPE (spatial layers) and causal mask
    (temporal layers). `spatial_rel_pos_bias` exists whenever spatial_pos is "rel", even in
    temporal layers where it is never used, because the checkpoints hold it."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, causal: bool = False, spatial_pos: str = "rel", scale: float = 8.0):
        super().__init__()
        self.heads, self.causal, self.scale, self.spatial_pos = heads, causal, scale, spatial_pos
        inner = dim_head * heads
        if spatial_pos == "rel":
            self.spatial_rel_pos_bias = ContinuousPositionBias(dim=dim, heads=heads)
        if causal:
            self.register_buffer("alibi_slopes", alibi_slopes(heads), persistent=False)
        self.norm = LayerNorm(dim)
        self.context_norm = LayerNorm(dim)  # for cross-attention, which the releases do not use
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(inner, dim, bias=False)
        self.explicit = False  # set by OmniTokenizer.set_attention_path

    def forward(self, x: Tensor, is_spatial: bool = True) -> Tensor:
        if x.shape[1] == 1:
            # One key (a temporal layer on a one-frame clip: every image): its softmax weight is
            # exactly 1, so attention returns the values, and the queries, keys and their
            # norms need not be computed (the official code computes them).
            return self.to_out(F.linear(x, self.to_kv.weight[self.to_out.in_features :]))
        return self.attend(x, is_spatial)

    def attend(self, x: Tensor, is_spatial: bool = True) -> Tensor:
        length = x.shape[1]
        # Only the queries see the pre-norm: the official code takes keys and values from the
        # un-normalised input (its kv input is picked before `x` is normalised).
        q = self.to_q(self.norm(x))
        k, v = self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (rearrange(t, "b n (h d) -> b n h d", h=self.heads) for t in (q, k, v))
        if self.spatial_pos == "rope" and is_spatial:
            angles = rope_2d_angles(length, q.shape[-1], device=x.device)
            q, k = apply_rope(q, angles), apply_rope(k, angles)
        q, k, v = (rearrange(t, "b n h d -> b h n d") for t in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        if not self.explicit:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=self._bias(length, is_spatial, q.dtype), scale=self.scale)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))

    def _bias(self, length: int, is_spatial: bool, dtype: torch.dtype) -> Tensor | None:
        """The additive logit bias of the explicit path: rel bias (spatial) or ALiBi + causal mask."""
        bias = None
        if self.spatial_pos == "rel" and is_spatial:
            side = int(math.sqrt(length))
            bias = self.spatial_rel_pos_bias(side, side)
        if self.causal:
            pos = torch.arange(length, device=self.to_q.weight.device)
            alibi = -(pos[None, :] - pos[:, None]).abs().float() * self.alibi_slopes.view(-1, 1, 1)
            future = pos[None, :] > pos[:, None]
            causal = alibi.masked_fill(future, float("-inf"))
            bias = causal if bias is None else bias + causal
        return None if bias is None else bias.to(dtype)


class WindowAttention(nn.Module):
    """Swin W-MSA (arXiv 2103.14030) over non-overlapping windows with a learned relative
    position bias table; pre-norm with the gamma/beta LayerNorm."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.window_size, self.num_heads = window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.norm = LayerNorm(dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window_size - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, _dim = x.shape
        side, ws = int(math.sqrt(length)), self.window_size
        x = self.norm(x)
        windows = rearrange(x, "b (nh wh nw ww) c -> (b nh nw) (wh ww) c", nh=side // ws, wh=ws, ww=ws)
        q, k, v = rearrange(self.qkv(windows), "n l (three h d) -> three n h l d", three=3, h=self.num_heads)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = rearrange(bias, "(i j) h -> h i j", i=ws * ws).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = self.proj(rearrange(out, "n h l d -> n l (h d)"))
        return rearrange(out, "(b nh nw) (wh ww) c -> b (nh wh nw ww) c", b=batch, nh=side // ws, wh=ws)


class GEGLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: float = 4.0, dropout: float = 0.0) -> nn.Sequential:
    """LayerNorm -> Linear(dim, 2 * inner) -> GEGLU -> Dropout -> Linear(inner, dim), inner = int(mult * 2/3 * dim)."""
    inner = int(mult * (2 / 3) * dim)
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, inner * 2, bias=False), GEGLU(), nn.Dropout(dropout), nn.Linear(inner, dim, bias=False)
    )


class Transformer(nn.Module):
    """Layers given by `block` ("t": PEG + global attention + FFN, "w": window attention + FFN),
    each residual, then `norm_out`."""

    def __init__(
        self, dim: int, *, block: str, dim_head: int, heads: int, ff_mult: float, causal: bool = False,
        peg_causal: bool = True, window_size: int = 8, spatial_pos: str = "rel",
    ):
        super().__init__()
        self.block = block
        self.layers = nn.ModuleList()
        for kind in block:
            if kind == "t":
                attention = Attention(dim, dim_head, heads, causal=causal, spatial_pos=spatial_pos)
                self.layers.append(nn.ModuleList([PEG(dim, causal=peg_causal), attention, None, feed_forward(dim, ff_mult)]))
            else:
                attention = WindowAttention(dim, window_size, heads)
                self.layers.append(nn.ModuleList([None, attention, None, feed_forward(dim, ff_mult)]))
        self.norm_out = LayerNorm(dim)

    def forward(self, x: Tensor, video_shape: tuple[int, int, int, int], is_spatial: bool) -> Tensor:
        for peg, attention, _, ff in self.layers:
            if peg is not None:
                x = peg(x, video_shape) + x
            x = (attention(x, is_spatial=is_spatial) if isinstance(attention, Attention) else attention(x)) + x
            x = ff(x) + x
        return self.norm_out(x)
