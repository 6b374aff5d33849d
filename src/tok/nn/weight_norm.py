"""Convolutions with weight normalisation stored as `weight_g` / `weight_v` (Salimans & Kingma,
arXiv 1602.07868).

The official audio checkpoints (EnCodec/SEANet, WavTokenizer, XY-Tokenizer, HiFi-GAN style
discriminators) were saved with the legacy `torch.nn.utils.weight_norm`, whose parameters are
named `weight_g` (per output channel norm, shape (out, 1, 1)) and `weight_v` (direction). These
classes keep exactly those names, so such checkpoints load key-by-key, without the deprecation
warning of the legacy API or the `parametrizations.weight.original0/1` names of the new one.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _norm_except_dim0(v: Tensor) -> Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))


class _WeightNorm:
    """Mixin: replaces `weight` by `weight_g * weight_v / ||weight_v||` (norm over all dims but 0)."""

    def _init_weight_norm(self) -> None:
        weight = self.weight
        del self.weight
        self.weight_v = nn.Parameter(weight.detach().clone())
        self.weight_g = nn.Parameter(_norm_except_dim0(weight.detach()).clone())

    def normed_weight(self) -> Tensor:
        v = self.weight_v
        return v * (self.weight_g / _norm_except_dim0(v))


class WNConv1d(_WeightNorm, nn.Conv1d):
    """`nn.Conv1d` with weight norm; same arguments."""

    def __init__(self, *args, **kwargs):
        nn.Conv1d.__init__(self, *args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.normed_weight(), self.bias)


class WNConv2d(_WeightNorm, nn.Conv2d):
    """`nn.Conv2d` with weight norm; same arguments."""

    def __init__(self, *args, **kwargs):
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.normed_weight(), self.bias)


class WNConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    """`nn.ConvTranspose1d` with weight norm (norm over dim 0 = input channels, as the legacy API)."""

    def __init__(self, *args, **kwargs):
        nn.ConvTranspose1d.__init__(self, *args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose1d(
            x, self.normed_weight(), self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )


__all__ = ["WNConv1d", "WNConv2d", "WNConvTranspose1d"]
