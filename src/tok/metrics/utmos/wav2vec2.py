"""wav2vec 2.0 Base (Baevski et al., arXiv 2006.11477) as fairseq builds it, for feature extraction.

Parameter names are fairseq's (`feature_extractor.conv_layers.0.0.weight`, `encoder.pos_conv.0.
weight_g`, `encoder.layers.N.self_attn.q_proj.weight`, ...), so fairseq-derived checkpoints load
key for key. Inference only: dropout is omitted, masking and quantisation heads are not built
(`mask_emb` is kept because checkpoints carry it).

Batches of different lengths run with a padding mask and give, for every item, the features the
item gets alone: the per-channel GroupNorm after the first convolution uses only the item's own
frames, padded frames are zeroed before the positional convolution (which zero-pads alone too),
and attention ignores padded keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# (channels, kernel, stride) of the 7 feature-encoder convolutions: total stride 320 (50 Hz at 16 kHz).
CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@dataclass(frozen=True)
class Wav2Vec2Config:
    dim: int = 768
    layers: int = 12
    heads: int = 12
    ffn_dim: int = 3072
    conv_dim: int = 512
    pos_kernel: int = 128
    pos_groups: int = 16


class ConvBlock(nn.Module):
    """conv (no bias) -> [GroupNorm per channel, first block only] -> GELU; names as fairseq's Sequential
    (0 conv, 1 dropout, 2 norm), so the keys are `conv_layers.i.0.weight` and `conv_layers.0.2.*`."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, group_norm: bool):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.add_module("0", nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=False))
        if group_norm:
            self.add_module("2", nn.GroupNorm(n_out, n_out, affine=True))

    def out_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths - self.kernel, self.stride, rounding_mode="floor") + 1

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        x = self._modules["0"](x)
        norm = self._modules.get("2")
        if norm is not None:
            x = masked_group_norm(x, self.out_lengths(lengths), norm)
        return F.gelu(x)


def frame_mask(lengths: Tensor, total: int) -> Tensor:
    """(B,) valid lengths -> (B, total) boolean, True on real frames."""
    return torch.arange(total, device=lengths.device)[None] < lengths[:, None]


def masked_group_norm(x: Tensor, lengths: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm with one group per channel, statistics over each item's real frames only."""
    mask = frame_mask(lengths, x.shape[-1])[:, None].to(x.dtype)  # (B, 1, T)
    count = lengths.clamp_min(1)[:, None, None].to(x.dtype)
    mean = (x * mask).sum(-1, keepdim=True) / count
    var = ((x - mean).pow(2) * mask).sum(-1, keepdim=True) / count
    x = (x - mean) / torch.sqrt(var + norm.eps)
    return x * norm.weight[None, :, None] + norm.bias[None, :, None]


class FeatureExtractor(nn.Module):
    def __init__(self, conv_dim: int):
        super().__init__()
        blocks, n_in = [], 1
        for i, (_, kernel, stride) in enumerate(CONV_LAYERS):
            blocks.append(ConvBlock(n_in, conv_dim, kernel, stride, group_norm=i == 0))
            n_in = conv_dim
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) samples -> (B, C, T) features and (B,) valid frame counts."""
        x = wave[:, None]
        for block in self.conv_layers:
            x = block(x, lengths)
            lengths = block.out_lengths(lengths)
        return x, lengths


class WeightNormConv1d(nn.Module):
    """Conv1d with the legacy weight-norm parametrisation fairseq checkpoints store
    (`weight_g` (1, 1, k), `weight_v` (out, in/groups, k), norm over every axis but the last)."""

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.groups, self.padding = groups, kernel // 2
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class PositionalConv(nn.Module):
    """`encoder.pos_conv`: weight-normed grouped conv, drop the extra last frame ("SamePad"), GELU."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.add_module("0", WeightNormConv1d(dim, kernel, groups))
        self.trim = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        x = self._modules["0"](x)
        return F.gelu(x[..., : x.shape[-1] - self.trim])


class Attention(nn.Module):
    """fairseq MultiheadAttention names (q/k/v/out_proj with biases) on PyTorch SDPA."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """x (B, T, D); keep (B, T) True on real frames (padded keys are ignored)."""
        split = "b t (h d) -> b h t d"
        q, k, v = (rearrange(p(x), split, h=self.heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        mask = keep[:, None, None, :] if keep is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(rearrange(out, "b h t d -> b t (h d)"))


class EncoderLayer(nn.Module):
    """Post-LN transformer layer (wav2vec 2.0 Base: layer_norm_first = False)."""

    def __init__(self, dim: int, heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x, keep))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class Encoder(nn.Module):
    def __init__(self, config: Wav2Vec2Config):
        super().__init__()
        self.pos_conv = PositionalConv(config.dim, config.pos_kernel, config.pos_groups)
        self.layer_norm = nn.LayerNorm(config.dim)
        self.layers = nn.ModuleList(EncoderLayer(config.dim, config.heads, config.ffn_dim) for _ in range(config.layers))

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        if keep is not None:
            x = x * keep[..., None].to(x.dtype)  # padded frames read as the zeros an item sees alone
        x = self.layer_norm(x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2))
        for layer in self.layers:
            x = layer(x, keep)
        return x


class Wav2Vec2(nn.Module):
    """waveforms (B, L) at 16 kHz -> last-layer features (B, T, dim), T ≈ L / 320."""

    def __init__(self, config: Wav2Vec2Config | None = None):
        config = config or Wav2Vec2Config()
        super().__init__()
        self.config = config
        self.feature_extractor = FeatureExtractor(config.conv_dim)
        self.layer_norm = nn.LayerNorm(config.conv_dim)
        self.post_extract_proj = nn.Linear(config.conv_dim, config.dim)
        self.encoder = Encoder(config)
        self.mask_emb = nn.Parameter(torch.zeros(config.dim))  # unused at inference; checkpoints carry it

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Returns features (B, T, dim) and valid frame counts (B,); frames past a count are padding."""
        if lengths is None:
            lengths = torch.full((wave.shape[0],), wave.shape[-1], device=wave.device, dtype=torch.long)
        feats, frames = self.feature_extractor(wave, lengths)
        x = self.post_extract_proj(self.layer_norm(feats.transpose(1, 2)))
        keep = frame_mask(frames, x.shape[1])
        x = self.encoder(x, None if bool(keep.all()) else keep)
        return x, frames
