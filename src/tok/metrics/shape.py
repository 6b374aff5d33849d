"""3D metrics on point clouds and occupancy grids (no mesh library needed).

Conventions (Occupancy Networks, `im2mesh/eval.py`; metrics.md §7):

- point clouds are (N, 3) or batched (B, N, 3) float tensors in the shape's normalised frame
  (ONet: the unit cube [−0.5, 0.5]³); sample the surfaces before calling these.
- accuracy = mean distance from each predicted point to its nearest reference point,
  completeness = the same from reference to prediction.
- Chamfer-L1 = ½(accuracy + completeness); Chamfer-L2 = ½(mean squared accuracy + mean squared
  completeness). No ×1000 factor. Papers that *sum* the two directions report twice these.
- F-score at τ (Tatarchenko et al. 2019): precision = fraction of predicted points within τ of
  the reference, recall = fraction of reference points within τ of the prediction,
  F = 2PR/(P+R); default τ = 0.01 (1% of the unit cube's side).
- volumetric IoU of two boolean occupancy grids (or point-wise occupancy labels) of one shape:
  |A ∧ B| / |A ∨ B|; two empty grids give 1.

Batched inputs return the mean over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.errors import TokError
from .checks import check_finite

# Nearest neighbours are found in chunks so 100k x 100k clouds never build a 40 GB matrix.
_CHUNK = 4096


def _clouds(reference: Tensor, reconstruction: Tensor) -> tuple[Tensor, Tensor]:
    out = []
    for x, what in ((reference, "reference"), (reconstruction, "reconstruction")):
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[-1] != 3:
            raise TokError(f"{what}: expected points (N, 3) or (B, N, 3), got shape {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise TokError(f"{what}: empty point cloud")
        check_finite(x, what)
        out.append(x.double())
    if out[0].shape[0] != out[1].shape[0]:
        raise TokError(f"unequal set sizes: {out[0].shape[0]} reference clouds but {out[1].shape[0]} reconstructions")
    return out[0], out[1]


def nearest_distances(source: Tensor, target: Tensor) -> Tensor:
    """(B, N, 3), (B, M, 3) -> (B, N): Euclidean distance from each source point to its nearest target point."""
    parts = [torch.cdist(source[:, i : i + _CHUNK], target).amin(dim=2) for i in range(0, source.shape[1], _CHUNK)]
    return torch.cat(parts, dim=1)


def chamfer_distance(reference: Tensor, reconstruction: Tensor, norm: str = "l1") -> float:
    """Chamfer-L1 (default) or Chamfer-L2, halved sum of both directions (see the module docstring)."""
    ref, rec = _clouds(reference, reconstruction)
    accuracy, completeness = nearest_distances(rec, ref), nearest_distances(ref, rec)
    if norm == "l1":
        value = 0.5 * (accuracy.mean(1) + completeness.mean(1))
    elif norm == "l2":
        value = 0.5 * (accuracy.pow(2).mean(1) + completeness.pow(2).mean(1))
    else:
        raise TokError(f"Chamfer norm must be 'l1' or 'l2', got {norm!r}")
    return float(value.mean())


def f_score(reference: Tensor, reconstruction: Tensor, threshold: float = 0.01) -> float:
    """F-score at distance `threshold` (see the module docstring); in [0, 1]."""
    if threshold <= 0:
        raise TokError(f"F-score threshold must be positive, got {threshold}")
    ref, rec = _clouds(reference, reconstruction)
    precision = (nearest_distances(rec, ref) < threshold).double().mean(1)
    recall = (nearest_distances(ref, rec) < threshold).double().mean(1)
    denom = precision + recall
    f = torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-300), torch.zeros_like(denom))
    return float(f.mean())


def volumetric_iou(reference: Tensor, reconstruction: Tensor, threshold: float = 0.5) -> float:
    """IoU of occupancy: one grid (D, H, W), grids (B, D, H, W), labels (N,) or (B, N) at sampled
    points; boolean, or floats cut at `threshold`."""
    if reference.shape != reconstruction.shape:
        raise TokError(f"mismatched sizes: reference {tuple(reference.shape)} vs reconstruction {tuple(reconstruction.shape)}")
    if reference.numel() == 0:
        raise TokError("empty occupancy grids")
    occ = []
    for x, what in ((reference, "reference"), (reconstruction, "reconstruction")):
        check_finite(x, what)
        occ.append(x if x.dtype == torch.bool else x > threshold)
    a, b = occ
    if a.ndim in (1, 3):  # one label vector (N,) or one grid (D, H, W)
        a, b = a[None], b[None]
    inter = (a & b).flatten(1).sum(1).double()
    union = (a | b).flatten(1).sum(1).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return float(iou.mean())
