"""Dynamic int8 matrix products for CPU inference: `nn.Linear` and `nn.Conv1d` on fbgemm.

Why: the transformer and Vocos decoders are bound by fp32 matrix products, which on a CPU without
native bf16 (AVX2 only) run at the machine's fp32 peak in both tok and the official code. fbgemm's
int8 kernels (u8 x s8 products, int32 sums) ran 1.5x that rate on a 2-core AVX2 EPYC for a
(6000 x 768) @ (768 x 2304) product. This is the "cheaper arithmetic" for such CPUs; on CPUs with
native bf16 the bf16 path (`cpu_bf16`) is the better choice, since it changes outputs less.

Scheme (per layer): weights symmetric int8 per output channel (scale = max |w| / 127), packed once
and cached; activations quantized per call to uint8 per tensor (asymmetric, from the tensor's min
and max, 7 bits on x86 so fbgemm's 16-bit pairwise sums cannot saturate); int32 accumulation, fp32
output with the bias added. A 1-D convolution runs as im2col + the same product. The result is not
bit-equal to fp32: about 1-3 % relative error per layer on random data, and the tokenizers' measured
quality change is in README ("int8 on CPU").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.errors import TokError

# Layers narrower than this gain nothing: quantizing the activations costs as much as the product.
MIN_FEATURES = 64


def int8_supported() -> bool:
    """Whether this build of torch has fbgemm's int8 kernels (x86 CPUs)."""
    return "fbgemm" in torch.backends.quantized.supported_engines


def pack_weight(weight: Tensor, bias: Tensor | None):
    """(out, in) fp32 -> fbgemm's packed int8 weight, symmetric per output channel."""
    weight = weight.detach().float()
    scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
    zero = torch.zeros(weight.shape[0], dtype=torch.long)
    q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(q, None if bias is None else bias.detach().float())


def int8_product(x: Tensor, packed) -> Tensor:
    """x (..., in) fp32 @ the packed weight^T + bias -> (..., out) fp32; x quantized per tensor to
    7 bits (`reduce_range`, as PyTorch does for fbgemm)."""
    return torch.ops.quantized.linear_dynamic(x, packed, True)


def _usable(x: Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


_CACHE = ("_int8_packed", "_int8_key")


class _Int8:
    """Mixin: the packed weight, rebuilt whenever the weight or bias tensor changes (a loaded state
    dict, an optimizer step, `.to()`), and kept out of the state dict and of copies."""

    _int8_key: tuple | None = None
    _int8_packed = None

    def _weight2d(self) -> Tensor:
        return self.weight

    def _packed(self):
        key = tuple((p.data_ptr(), p._version) for p in (self.weight, self.bias) if p is not None)
        if key != self._int8_key:
            self._int8_packed = pack_weight(self._weight2d(), self.bias)
            self._int8_key = key
        return self._int8_packed

    def _drop_packed(self) -> None:
        for name in _CACHE:
            self.__dict__.pop(name, None)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in _CACHE}


class Int8Linear(_Int8, nn.Linear):
    """`nn.Linear` that runs fbgemm's dynamic int8 product for fp32 CPU inference; training,
    autograd, autocast, GPUs and torch.compile take `nn.Linear`'s path. Same parameters and keys."""

    def forward(self, x: Tensor) -> Tensor:
        if _usable(x):
            return int8_product(x, self._packed())
        return super().forward(x)


class Int8Conv1d(_Int8, nn.Conv1d):
    """`nn.Conv1d` (groups 1, zero or no padding) as im2col + the dynamic int8 product, under the
    same conditions as `Int8Linear`; (B, C_in, T) -> (B, C_out, T_out)."""

    def _weight2d(self) -> Tensor:
        return self.weight.transpose(1, 2).flatten(1)  # (C_out, k * C_in), the columns' order

    def forward(self, x: Tensor) -> Tensor:
        if not (_usable(x) and x.ndim == 3):
            return super().forward(x)
        (k,), (stride,), (dilation,), (pad,) = self.kernel_size, self.stride, self.dilation, self.padding
        # Columns in (B, T_out, k, C_in) order, built by one copy from a channels-last input (an
        # `F.unfold` would give (B, C_in * k, T_out), which the product then copies again to
        # transpose it); the weight is packed in the same (C_out, k, C_in) order.
        packed = self._packed()
        rows = F.pad(x, (pad, pad)).transpose(1, 2).contiguous()  # (B, T + 2 pad, C_in)
        b, t, c = rows.shape
        t_out = (t - dilation * (k - 1) - 1) // stride + 1
        cols = rows.as_strided((b, t_out, k, c), (t * c, stride * c, dilation * c, 1))
        return int8_product(cols.reshape(b, t_out, k * c), packed).transpose(1, 2)


def is_int8(module: nn.Module) -> bool:
    """Whether `module` is a layer switched to its int8 class."""
    return isinstance(module, _Int8)


def eligible(module: nn.Module) -> bool:
    """A plain `nn.Linear`, or a plain `nn.Conv1d` without groups and with zero (or no) padding
    given as a number, both at least `MIN_FEATURES` wide in and out."""
    if type(module) is nn.Linear:
        return min(module.in_features, module.out_features) >= MIN_FEATURES
    if type(module) is nn.Conv1d:
        return (
            module.groups == 1
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
            and min(module.in_channels, module.out_channels) >= MIN_FEATURES
        )
    return False


_SWITCH = {nn.Linear: Int8Linear, nn.Conv1d: Int8Conv1d}
_BACK = {v: k for k, v in _SWITCH.items()}


def use_int8(module: nn.Module, enabled: bool = True) -> int:
    """Switch the eligible layers inside `module` to their int8 classes in place (or back, with
    `enabled=False`, which also frees the packed weights). Parameters and state-dict keys are
    unchanged. Returns how many layers were switched."""
    if enabled and not int8_supported():
        raise TokError("int8 CPU inference needs PyTorch's fbgemm kernels (x86 CPUs); this build has "
                       f"only {', '.join(torch.backends.quantized.supported_engines)}")
    switched = 0
    for layer in module.modules():
        if enabled and eligible(layer):
            layer.__class__ = _SWITCH[type(layer)]
            switched += 1
        elif not enabled and type(layer) in _BACK:
            layer._drop_packed()
            layer.__class__ = _BACK[type(layer)]
            switched += 1
    return switched


__all__ = ["Int8Conv1d", "Int8Linear", "eligible", "int8_product", "int8_supported", "is_int8", "pack_weight", "use_int8"]
