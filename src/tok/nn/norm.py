"""Normalization layers shared by the transformer families."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back, stable under bf16 autocast.

    FlexTok builds it without weight or bias (`elementwise_affine=False, bias=False`), which is
    why its checkpoints hold no norm keys.
    """

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def affine_free_layer_norm(dim: int) -> Fp32LayerNorm:
    return Fp32LayerNorm(dim, elementwise_affine=False, bias=False)
