"""Input checks shared by the metrics: every bad input is a TokError naming the cause."""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.errors import TokError


def as_image_batch(x: Tensor, what: str) -> Tensor:
    """(3, H, W) or (B, C, H, W) float in [0, 1] -> (B, C, H, W) float64-safe tensor; NaN/inf refused."""
    if not isinstance(x, Tensor):
        raise TokError(f"{what}: expected a tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise TokError(f"{what}: expected images (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    check_finite(x, what)
    return x


def check_finite(x: Tensor, what: str) -> None:
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise TokError(f"{what}: contains NaN or infinite values")


def check_pair(reference: Tensor, reconstruction: Tensor) -> None:
    """Paired metrics need the same number of items of the same size."""
    if reference.shape[0] != reconstruction.shape[0]:
        raise TokError(f"unequal set sizes: {reference.shape[0]} references but {reconstruction.shape[0]} reconstructions")
    if reference.shape[1:] != reconstruction.shape[1:]:
        raise TokError(
            f"mismatched sizes: reference {tuple(reference.shape[1:])} vs reconstruction {tuple(reconstruction.shape[1:])}"
        )
