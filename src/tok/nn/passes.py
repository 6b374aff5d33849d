"""CPU inference in passes of a few batch items.

On a CPU, a network pass over a large batch can be slower per item than a pass over one item: the
activations of the whole batch leave the cache (measured: XY-Tokenizer's Vocos, OmniTokenizer,
TokenFlow's pixel encoder at batch 8). Batch items are independent at inference, so splitting the
batch changes no output; on GPUs and under autograd the batch stays whole.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def cpu_inference_in_passes(fn: Callable[..., Tensor], items_per_pass: int, *tensors: Tensor | None) -> Tensor:
    """fn(*tensors), computed `items_per_pass` items at a time along dim 0 during CPU inference.

    Tensors whose first dimension is the batch are split; the others (None, or a (1,) condition
    shared by the batch) go whole to every pass. The outputs are concatenated along dim 0.
    """
    first = tensors[0]
    n = first.shape[0]
    if first.device.type != "cpu" or torch.is_grad_enabled() or items_per_pass >= n:
        return fn(*tensors)
    step = max(1, items_per_pass)

    def part(t: Tensor | None, start: int) -> Tensor | None:
        return t[start : start + step] if t is not None and t.ndim and t.shape[0] == n else t

    return torch.cat([fn(*(part(t, start) for t in tensors)) for start in range(0, n, step)])
