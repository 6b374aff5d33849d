"""3x3 convolutions with fewer multiplications: Winograd's minimal filtering F(4x4, 3x3).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (arXiv 1509.09308). A 4x4 output
tile of a 3x3 convolution is computed from a 6x6 input tile as A^T [(G g G^T) * (B^T d B)] A: the
36 elementwise products become 36 matrix products (tiles x C_in) @ (C_in x C_out), 4x fewer
multiply-adds than the direct convolution's 9 per output and input channel. The tile transforms are
sums with small constants, run as small dense matrix products over strips of tiles that stay in
the cache.

Why: on CPUs the VQGAN-style decoders (TokenFlow's pixel decoder: 1.5 TFLOP per 256² image) are
bound by the convolutions' arithmetic, and PyTorch's oneDNN kernels run the direct algorithm there. Measured
on a 2-core AVX2 EPYC, fp32: a 256-channel 3x3 convolution on a 128² or 256² map ran 1.5-1.9x faster
than PyTorch's NCHW kernel (benchmarks/winograd_conv.py).

Numerics: the transforms' constants (1/4, 1/6, 1/12, 1/24; products up to 8) make the rounding
error two to four times a direct fp32 convolution's (max error against a float64 reference,
256-channel layers: 4.5e-5 to 5.4e-5 against 1.0e-5 to 2.2e-5), still far inside fp32 parity
tolerances, but not bit-equal to a direct convolution. Use it where outputs are compared with a
tolerance (decoders), not where an argmin follows (encoders whose ids must equal another
implementation's).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# F(4x4, 3x3) (Lavin & Gray, section 4.2): input transform B^T, filter transform G, output A^T.
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
TILE, WINDOW = 4, 6  # output tile side, input tile side (TILE + 3 - 1)

# The transformed tiles of one strip (36 x tiles x C_in floats) are kept near this size, so that
# the transforms and the 36 products work in the cache (8 MiB was the steadiest of 4-32 MiB measured).
STRIP_BYTES = 8 << 20


def _transform(matrix: Tensor, x: Tensor) -> Tensor:
    """matrix (p, q) applied to both leading axes of x (q, q, ...): matrix X matrix^T at every
    trailing position, as two matrix products. Most of the constants are 0, but dense products of
    these shapes run at BLAS speed, far ahead of one elementwise op per non-zero term."""
    p, q = matrix.shape
    rest = x.shape[2:]
    x = (matrix @ x.reshape(q, -1)).view(p, q, -1)  # along the first axis
    return torch.bmm(matrix.expand(p, p, q), x).view(p, p, *rest)  # along the second


def filter_transform(weight: Tensor) -> Tensor:
    """(C_out, C_in, 3, 3) -> (36, C_in, C_out): G g G^T for every channel pair, in the weight's
    dtype. Not cached: a cache would hold 4x the weights' memory (see `WinogradConv2d.min_tiles`
    for when recomputing it pays)."""
    g = torch.tensor(_G, dtype=weight.dtype, device=weight.device)
    c_out, c_in = weight.shape[:2]
    return _transform(g, weight.permute(2, 3, 1, 0)).reshape(WINDOW * WINDOW, c_in, c_out)


def winograd_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """3x3 convolution, stride 1, zero padding 1, of x (B, C_in, H, W) -> (B, C_out, H, W).

    Computed in NHWC: a channels-last input is read without a copy and the output is channels-last,
    so a network of these convolutions (with norms and activations between, which keep the format)
    converts once.
    """
    b, c_in, h, w = x.shape
    c_out = weight.shape[0]
    u = filter_transform(weight)
    bt = torch.tensor(_BT, dtype=x.dtype, device=x.device)
    at = torch.tensor(_AT, dtype=x.dtype, device=x.device)
    th, tw = -(-h // TILE), -(-w // TILE)  # tiles per column / row (the last may overhang)
    nhwc = x.permute(0, 2, 3, 1)
    out = x.new_empty(b, th, TILE, tw, TILE, c_out)
    rows_per_strip = max(1, STRIP_BYTES // (WINDOW * WINDOW * tw * max(c_in, c_out) * x.element_size()))
    # The zero-padded input of one strip (its rows, a row above and below, a zero column left and
    # right plus what completes the last tile), instead of a padded copy of the whole map. The
    # padding columns are never written, so zeroing once keeps them zero.
    buffer = x.new_zeros(TILE * rows_per_strip + 2, TILE * tw + 2, c_in)
    for i in range(b):
        for r0 in range(0, th, rows_per_strip):
            n = min(th, r0 + rows_per_strip) - r0
            block = buffer[: TILE * n + 2]
            top = TILE * r0 - 1  # the input row in block row 0
            lo, hi = max(top, 0), min(top + len(block), h)
            block[lo - top : hi - top, 1 : w + 1].copy_(nhwc[i, lo:hi])
            block[: lo - top].zero_()  # above the first row, below the last: zero padding
            block[hi - top :].zero_()
            # 6x6 windows at stride 4: (n, tw, C_in, 6, 6) view -> (6, 6, n, tw, C_in)
            windows = block.unfold(0, WINDOW, TILE).unfold(1, WINDOW, TILE).permute(3, 4, 0, 1, 2)
            v = _transform(bt, windows.contiguous())
            m = torch.bmm(v.view(WINDOW * WINDOW, n * tw, c_in), u).view(WINDOW, WINDOW, n, tw, c_out)
            tiles = _transform(at, m)  # (4, 4, n, tw, C_out)
            strip = out[i, r0 : r0 + n].permute(1, 3, 0, 2, 4)
            if bias is None:
                strip.copy_(tiles)
            else:
                torch.add(tiles, bias, out=strip)
    result = out.view(b, th * TILE, tw * TILE, c_out)
    if th * TILE != h or tw * TILE != w:
        result = result[:, :h, :w].contiguous()
    return result.permute(0, 3, 1, 2)


class WinogradConv2d(nn.Conv2d):
    """`nn.Conv2d` (3x3, stride 1, padding 1) that runs `winograd_conv3x3` for fp32 CPU inference.

    Training, autograd, GPUs, autocast, torch.compile and small inputs (fewer than `min_tiles`
    output tiles over the batch) take `nn.Conv2d`'s path. The filter transform writes 4x the
    weight's size, a fixed cost that only inputs of 256 tiles (one 64² map) or more repay: on a
    512-channel 32² map (64 tiles) Winograd was 0.91x the direct convolution. Parameters and
    state-dict keys are `nn.Conv2d`'s.
    """

    min_tiles: int = 256

    def forward(self, x: Tensor) -> Tensor:
        if runs_winograd(x) and x.shape[0] * -(-x.shape[-2] // TILE) * -(-x.shape[-1] // TILE) >= self.min_tiles:
            return winograd_conv3x3(x, self.weight, self.bias)
        return super().forward(x)


def runs_winograd(x: Tensor) -> bool:
    """Whether `WinogradConv2d` may take its Winograd path for x (fp32 CPU inference, eager)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.ndim == 4
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()  # inductor plans its own convolutions
    )


def _channels_last_entry(module: nn.Module, args: tuple) -> tuple | None:
    # A forward pre-hook. Winograd reads and writes NHWC. A network entered in NCHW keeps its
    # residual sums in NCHW (a sum takes its first operand's layout), so every Winograd layer after
    # a residual pays a strided gather of its input (a 512-channel 64² layer ran 1.15-1.48x slower
    # from NCHW; benchmarks/winograd_conv.py). Entered in NHWC, norms, activations, sums and the
    # direct convolutions all stay NHWC (FlexTok's Winograd VAE encoder: 1.08-1.16x).
    x = args[0] if args else None
    if isinstance(x, Tensor) and runs_winograd(x):
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return None


def eligible(conv: nn.Module) -> bool:
    """A plain 3x3 stride-1 zero-padded convolution with at least 32 input and output channels
    (narrower ones, e.g. a decoder's 3-channel output, gain nothing)."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and min(conv.in_channels, conv.out_channels) >= 32
    )


def use_winograd(module: nn.Module, on: bool = True) -> int:
    """Switch every eligible `nn.Conv2d` inside `module` to `WinogradConv2d` in place (same
    parameters and keys; only `forward` changes), and have `module` take its input in NHWC where
    the Winograd path runs; or with `on=False` undo both. Returns how many were switched."""
    switched = 0
    for conv in module.modules():
        if on and eligible(conv):
            conv.__class__ = WinogradConv2d
        elif not on and type(conv) is WinogradConv2d:
            conv.__class__ = nn.Conv2d
        else:
            continue
        switched += 1
    hooks = module._forward_pre_hooks
    for key in [k for k, hook in hooks.items() if hook is _channels_last_entry]:
        del hooks[key]
    if type(module) is not WinogradConv2d and any(type(m) is WinogradConv2d for m in module.modules()):
        module.register_forward_pre_hook(_channels_last_entry)
    return switched


__all__ = ["WinogradConv2d", "eligible", "filter_transform", "runs_winograd", "use_winograd", "winograd_conv3x3"]
