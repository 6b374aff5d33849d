"""Image patches: a strided-convolution patch embedding and its inverse for pixel heads."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, (H/p)(W/p), D) with a p x p stride-p convolution (ViT), rows first."""

    def __init__(self, channels: int, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"image side {tuple(x.shape[-2:])} is not a multiple of the patch size {p}")
        return rearrange(self.proj(x), "b d h w -> b (h w) d")


def unpatchify(patches: Tensor, height: int, width: int, patch_size: int) -> Tensor:
    """(B, h*w, p*p*C) patch vectors ordered (row-in-patch, col-in-patch, channel) -> (B, C, h*p, w*p)."""
    p = patch_size
    return rearrange(patches, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=height, w=width, p1=p, p2=p)
