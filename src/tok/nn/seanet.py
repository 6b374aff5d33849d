"""The SEANet convolutional encoder of EnCodec (Défossez et al., arXiv 2210.13438), as WavTokenizer
uses it: weight-normed convs with EnCodec's padding rule, ELU residual blocks, strided downsampling,
a residual LSTM, and a final projection.

Module nesting mirrors the official code so keys read `model.0.conv.conv.weight_v`,
`model.1.block.1.conv.conv.weight_v`, `model.1.shortcut.conv.conv.weight_v`,
`model.13.lstm.weight_ih_l0`, ... (SConv1d -> NormConv1d -> weight-normed Conv1d).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weight_norm import WNConv1d


def pad1d(x: Tensor, left: int, right: int, mode: str = "reflect") -> Tensor:
    """F.pad that also reflects inputs shorter than the pad (zero-extends first, as EnCodec does)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode, 0.0)
    length = x.shape[-1]
    extra = max(0, max(left, right) - length + 1)
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), "reflect")
    return padded[..., : padded.shape[-1] - extra]


class NormConv1d(nn.Module):
    """A Conv1d (weight-normed or plain) named `conv`, plus an identity `norm` (no keys)."""

    def __init__(self, *args, weight_norm: bool = True, **kwargs):
        super().__init__()
        self.conv = WNConv1d(*args, **kwargs) if weight_norm else nn.Conv1d(*args, **kwargs)
        self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))


class SConv1d(nn.Module):
    """Conv1d with EnCodec's padding: total (k_eff - stride), right half = total // 2 (non-causal)
    or all left (causal), plus extra right padding so the last window is complete; output length
    ceil(L / stride)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
        causal: bool = False, pad_mode: str = "reflect", weight_norm: bool = True,
    ):
        super().__init__()
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation, weight_norm=weight_norm)
        self.causal, self.pad_mode = causal, pad_mode
        self.kernel_size, self.stride = (kernel_size - 1) * dilation + 1, stride

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size, self.stride
        total = k - s
        length = x.shape[-1]
        n_frames = (length - k + total) / s + 1
        extra = (math.ceil(n_frames) - 1) * s + (k - total) - length
        if self.causal:
            left, right = total, extra
        else:
            right = total // 2
            left, right = total - right, right + extra
        return self.conv(pad1d(x, left, right, self.pad_mode))


class SEANetResnetBlock(nn.Module):
    """ELU -> conv(dim -> dim/compress, k) -> ELU -> conv(-> dim, k1), plus a 1x1-conv shortcut
    (`true_skip=False`, EnCodec's default) or identity."""

    def __init__(self, dim: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2, true_skip: bool = False, **conv):
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(alpha=1.0),
            SConv1d(dim, hidden, kernel_size, dilation=dilation, **conv),
            nn.ELU(alpha=1.0),
            SConv1d(hidden, dim, 1, **conv),
        )
        self.shortcut = nn.Identity() if true_skip else SConv1d(dim, dim, 1, **conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """Unidirectional LSTM over time on (B, C, T), with a residual connection; key prefix `lstm`."""

    def __init__(self, dim: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.lstm(x.permute(2, 0, 1))
        y = y.permute(1, 2, 0)
        return y + x if self.skip else y


class SEANetEncoder(nn.Module):
    """Waveform (B, channels, L) -> latents (B, dimension, ceil(L / hop)), hop = prod(ratios).

    Args:
        channels: audio channels (1).
        dimension: latent width (WavTokenizer 512).
        n_filters: width of the first conv; doubles at each downsampling.
        n_residual_layers: residual blocks per stage (dilation dilation_base**j).
        ratios: downsampling ratios as the official configs list them; the encoder applies them
            reversed (EnCodec convention), e.g. [8, 5, 4, 2] downsamples by 2, 4, 5, 8.
        kernel_size, last_kernel_size, residual_kernel_size, dilation_base, compress, true_skip:
            EnCodec hyper-parameters.
        lstm: LSTM layers (0 for none).
        causal, pad_mode: padding rule of every conv.
    """

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 1,
        ratios: tuple[int, ...] = (8, 5, 4, 2),
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        compress: int = 2,
        true_skip: bool = False,
        lstm: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
    ):
        super().__init__()
        self.ratios = tuple(reversed(ratios))
        self.hop_length = math.prod(ratios)
        self.dimension = dimension
        conv = {"causal": causal, "pad_mode": pad_mode}
        mult = 1
        layers: list[nn.Module] = [SConv1d(channels, n_filters, kernel_size, **conv)]
        for ratio in self.ratios:
            width = mult * n_filters
            for j in range(n_residual_layers):
                layers.append(
                    SEANetResnetBlock(width, residual_kernel_size, dilation_base**j, compress, true_skip, **conv)
                )
            layers += [nn.ELU(alpha=1.0), SConv1d(width, width * 2, ratio * 2, stride=ratio, **conv)]
            mult *= 2
        if lstm:
            layers.append(SLSTM(mult * n_filters, lstm))
        layers += [nn.ELU(alpha=1.0), SConv1d(mult * n_filters, dimension, last_kernel_size, **conv)]
        self.model = nn.Sequential(*layers)

    def _split_local(self) -> tuple[list[nn.Module], list[nn.Module]]:
        """The layers before the LSTM (each output sees a bounded window of input) and the rest."""
        layers = list(self.model)
        cut = next((i for i, layer in enumerate(layers) if isinstance(layer, SLSTM)), len(layers))
        return layers[:cut], layers[cut:]

    def local_reach(self) -> tuple[int, int]:
        """(stride, reach) of the layers before the LSTM: their output step in input samples, and
        an upper bound on how many input samples one output sees on either side."""
        stride, reach = 1, 0
        for layer in self._split_local()[0]:
            convs = [m for m in layer.modules() if isinstance(m, SConv1d)]
            reach += sum(conv.kernel_size for conv in convs) * stride  # parallel paths summed: a bound
            stride *= math.prod(conv.stride for conv in convs)
        return stride, reach

    def forward(self, x: Tensor, chunk_samples: int | None = None) -> Tensor:
        """`chunk_samples`: run the layers before the LSTM over time chunks of about that many
        samples, each with enough real context on both sides that the kept outputs equal a
        one-piece pass (up to float rounding: conv kernels may sum in another order for another
        length; bit-identical for WavTokenizer-75 on 10 s clips). Long or batched inputs then
        keep their activations small (a 10 s batch of 8 makes 245 MB tensors at the first stage
        otherwise, whose memory traffic and page faults cost more than the convolutions)."""
        local, rest = self._split_local()
        stride, reach = self.local_reach()
        halo = math.ceil(reach / stride) * stride  # chunk borders on the output grid
        length = x.shape[-1]
        if chunk_samples is None or length <= chunk_samples + 2 * halo:
            return self.model(x)
        chunk = math.ceil(chunk_samples / stride) * stride
        pieces = []
        for start in range(0, length, chunk):
            a, b = max(0, start - halo), min(length, start + chunk + halo)
            h = x[..., a:b]
            for layer in local:
                h = layer(h)
            first = (start - a) // stride
            pieces.append(h[..., first : first + math.ceil(min(chunk, length - start) / stride)])
        h = torch.cat(pieces, dim=-1)
        for layer in rest:
            h = layer(h)
        return h
