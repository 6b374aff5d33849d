"""TokenFlow's pixel branch: the VQGAN-style CNN encoder and decoder (taming-transformers layout).

Attribute names follow the official `Encoder` / `Decoder` (`conv_blocks.{i}.res.{j}`, `.attn.{j}`,
`.downsample.conv`, `mid.{0,1,2}`, `norm_out`, `conv_out`) so official keys load unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # The official block names its 1x1 channel-changing shortcut `nin_shortcut`.
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head attention over all positions, with 1x1-conv projections (q, k, v, proj_out)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        h = self.norm(x)
        q, k, v = (rearrange(f(h), "b c h w -> b 1 (h w) c") for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, 1, HW, C), scale 1/sqrt(C) as the original
        return x + self.proj_out(rearrange(out, "b 1 (h w) c -> b c h w", h=H, w=W))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as taming-transformers


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: ResNet blocks (`res`), attention after each (`attn`, may be empty),
    then a resampler (`downsample` / `upsample`) except at the last level."""

    def __init__(self, res: list[nn.Module], attn: list[nn.Module], resample: nn.Module | None, name: str):
        super().__init__()
        self.res = nn.ModuleList(res)
        self.attn = nn.ModuleList(attn)
        self.resample_name = name
        if resample is not None:
            setattr(self, name, resample)

    def forward(self, h: Tensor) -> Tensor:
        for i, block in enumerate(self.res):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        resample = getattr(self, self.resample_name, None)
        return resample(h) if resample is not None else h


class Encoder(nn.Module):
    """Image (B, 3, H, W) -> (B, z_channels, H/2^(L-1), W/2^(L-1)); attention at the last level only."""

    def __init__(self, ch: int = 128, ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4), num_res_blocks: int = 2, z_channels: int = 256, dropout: float = 0.0):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        levels, block_in = [], ch
        for i, mult in enumerate(ch_mult):
            last = i == len(ch_mult) - 1
            res, attn = [], []
            for _ in range(num_res_blocks):
                res.append(ResnetBlock(block_in, ch * mult, dropout))
                block_in = ch * mult
                if last:
                    attn.append(AttnBlock(block_in))
            levels.append(Level(res, attn, None if last else Downsample(block_in), "downsample"))
        self.conv_blocks = nn.ModuleList(levels)
        self.mid = nn.ModuleList([ResnetBlock(block_in, block_in, dropout), AttnBlock(block_in), ResnetBlock(block_in, block_in, dropout)])
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """(B, z_channels, h, w) -> image (B, 3, h*2^(L-1), w*2^(L-1)); num_res_blocks + 1 blocks per level.

    The "enhanced" decoder of the released B model is this with ch=256 and num_res_blocks=4.
    """

    def __init__(self, ch: int = 128, ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4), num_res_blocks: int = 2, z_channels: int = 256, dropout: float = 0.0):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(block_in, block_in, dropout), AttnBlock(block_in), ResnetBlock(block_in, block_in, dropout)])
        levels = []
        for i in reversed(range(len(ch_mult))):
            res, attn = [], []
            for _ in range(num_res_blocks + 1):
                res.append(ResnetBlock(block_in, ch * ch_mult[i], dropout))
                block_in = ch * ch_mult[i]
                if i == len(ch_mult) - 1:
                    attn.append(AttnBlock(block_in))
            levels.append(Level(res, attn, Upsample(block_in) if i != 0 else None, "upsample"))
        self.conv_blocks = nn.ModuleList(levels)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    @property
    def last_layer(self) -> Tensor:
        return self.conv_out.weight

    def forward(self, z: Tensor) -> Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
