"""XY-Tokenizer's Transformer towers and resampling layers, with the official attribute names.

Every sequence module takes channel-first features (B, C, T) plus valid lengths (B,) and returns
the same, like the official modules. Attention only looks at valid keys and every tower zeroes its
padded frames, so an item gives the same valid outputs alone or in a padded batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Whisper's fixed positions: sin half then cos half, timescales spaced log(10000)/(C/2 - 1)."""
    if channels % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {channels}")
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B, max_len) boolean, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class WhisperAttention(nn.Module):
    """Self-attention with Whisper's projections: q, v and out with bias, k without."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not a multiple of {num_heads} heads")
        self.num_heads = num_heads
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=True)
        self.q_proj = nn.Linear(dim, dim, bias=True)
        self.out_proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        """x: (B, T, D); key_mask: (B, 1, 1, T) boolean, True on keys that may be attended."""
        split = "b t (h d) -> b h t d"
        q = rearrange(self.q_proj(x), split, h=self.num_heads)
        k = rearrange(self.k_proj(x), split, h=self.num_heads)
        v = rearrange(self.v_proj(x), split, h=self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.out_proj(rearrange(out, "b h t d -> b t (h d)"))


class WhisperLayer(nn.Module):
    """Pre-LN block (official `OmniWhisperTransformerLayer`): attention, then a GELU MLP."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = WhisperAttention(dim, num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), key_mask)
        x = x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        if x.dtype in (torch.float16, torch.bfloat16):
            # Half-precision overflow guard of the official layer.
            limit = torch.finfo(x.dtype).max - 1000
            x = x.clamp(-limit, limit)
        return x


class _Stack(nn.Module):
    """Positions + Whisper layers + final LayerNorm + zeroed padding, shared by every tower."""

    def _init_stack(self, dim: int, num_layers: int, num_heads: int, ffn_dim: int, max_positions: int) -> None:
        self.register_buffer("positional_embedding", sinusoids(max_positions, dim))
        self.layers = nn.ModuleList(WhisperLayer(dim, num_heads, ffn_dim) for _ in range(num_layers))
        self.layer_norm = nn.LayerNorm(dim)

    def run_stack(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, T, D) channel-last -> (B, T, D) with padded frames zeroed."""
        steps = x.shape[1]
        positions = self.positional_embedding
        if steps > positions.shape[0]:
            # Past the trained length (one-pass encoding of long audio): the same formula continues.
            positions = sinusoids(steps, positions.shape[1]).to(positions.device)
        x = (x.float() + positions[:steps]).to(x.dtype)
        valid = length_mask(lengths, steps)
        key_mask = valid[:, None, None, :]
        for layer in self.layers:
            x = layer(x, key_mask)
        return torch.where(valid[..., None], self.layer_norm(x), 0.0)


class AudioEncoder(_Stack):
    """Official `OmniAudioEncoder`: mel (B, n_mels, T) at 100 Hz -> (B, dim, T // 2) at 50 Hz."""

    def __init__(self, n_mels: int, dim: int, num_layers: int, num_heads: int, ffn_dim: int, max_positions: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, stride=2, padding=1)
        self._init_stack(dim, num_layers, num_heads, ffn_dim, max_positions)

    def forward(self, mel: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        out_lengths = torch.div(lengths, 2, rounding_mode="floor")
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel.to(self.conv1.weight.dtype)))))
        x = x[:, :, : int(out_lengths.max())]
        return self.run_stack(x.transpose(1, 2), out_lengths).transpose(1, 2), out_lengths


class AudioDecoder(_Stack):
    """Official `OmniAudioDecoder`: (B, dim, T) at 50 Hz -> features (B, n_mels, 2T) at 100 Hz."""

    def __init__(self, n_mels: int, dim: int, num_layers: int, num_heads: int, ffn_dim: int, max_positions: int):
        super().__init__()
        self.deconv1 = nn.ConvTranspose1d(dim, dim, kernel_size=3, stride=2)
        self.deconv2 = nn.ConvTranspose1d(dim, n_mels, kernel_size=3, stride=1)
        self._init_stack(dim, num_layers, num_heads, ffn_dim, max_positions)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        steps = x.shape[2]
        x = self.run_stack(x.transpose(1, 2), lengths).transpose(1, 2)
        # Both transposed convolutions only look backwards in time past their padding-free
        # start, so the valid frames never see the padded ones.
        y = F.gelu(self.deconv2(F.gelu(self.deconv1(x))))
        return y[:, :, : 2 * steps], lengths * 2


class Adapter(_Stack):
    """Official `Transformer`: optional input projection, Whisper layers, optional output projection."""

    def __init__(self, input_dim: int, dim: int, output_dim: int, num_layers: int, num_heads: int, ffn_dim: int, max_positions: int):
        super().__init__()
        self.proj = nn.Linear(input_dim, dim) if input_dim != dim else None
        self._init_stack(dim, num_layers, num_heads, ffn_dim, max_positions)
        self.out_proj = nn.Linear(dim, output_dim) if output_dim != dim else None

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = x.transpose(1, 2)
        if self.proj is not None:
            x = self.proj(x)
        x = self.run_stack(x, lengths)
        if self.out_proj is not None:
            x = self.out_proj(x)
        return x.transpose(1, 2), lengths


class ResidualDownConv(nn.Module):
    """Official `ResidualDownConv`: 4 frames -> 1 (50 -> 12.5 Hz), width dim -> 4 dim.

    out = LayerNorm(down(SiLU(gate(x)) * up(x)) + stack(x)), where stack concatenates each group
    of `factor` consecutive frames frame-major. Unlike the official code (which pads the feature
    axis, never reached under its fixed 30-s window) the time axis is zero-padded to a multiple of
    `factor`; output frames past length // factor are padding.
    """

    def __init__(self, dim: int, factor: int = 4):
        super().__init__()
        self.factor = factor
        wide = dim * factor
        self.gate_proj = nn.Conv1d(dim, wide, factor, factor, bias=False)
        self.up_proj = nn.Conv1d(dim, wide, factor, factor, bias=False)
        self.down_proj = nn.Linear(wide, wide, bias=False)
        self.layer_norm = nn.LayerNorm(wide)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = F.pad(x, (0, -x.shape[2] % self.factor))
        gate = self.gate_proj(x).transpose(1, 2)
        up = self.up_proj(x).transpose(1, 2)
        stacked = rearrange(x, "b d (t k) -> b t (k d)", k=self.factor)
        out = self.layer_norm(self.down_proj(F.silu(gate) * up) + stacked)
        return out.transpose(1, 2), torch.div(lengths, self.factor, rounding_mode="floor")


class UpConv(nn.Module):
    """Official `UpConv`: (B, factor * dim, T) -> (B, dim, factor * T) by a transposed convolution."""

    def __init__(self, dim: int, factor: int = 4):
        super().__init__()
        self.factor = factor
        self.up_conv = nn.ConvTranspose1d(factor * dim, dim, kernel_size=factor, stride=factor, bias=False)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.up_conv(x), lengths * self.factor
