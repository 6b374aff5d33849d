"""The FID family through torch-fidelity: rFID, gFID, KID, Inception Score.

Everything that decides the number is torch-fidelity's (0.4), so our values equal its
`calculate_metrics` on the same images and weights:

- network: torch-fidelity's `inception-v3-compat` (the TF `inception-2015-12-05` graph ported to
  PyTorch), weights `weights-inception-2015-12-05-6726825d.pth`, resolved by `metrics.weights`;
- preprocessing: uint8 RGB (B, 3, H, W) -> TF1-style bilinear resize to 299×299 -> (x − 128)/128;
  float images in [0, 1] are quantised first with round(255·x), as when saved to PNG;
- features: pool3 (2048-d) for FID and KID, `logits_unbiased` (1008-d) for IS;
- FID: unbiased covariance (N − 1), trace of the matrix square root from the eigenvalues of
  Σ1Σ2 (torch-fidelity's `fid_statistics_to_metric`);
- KID: polynomial kernel of degree 3, γ = 1/d, coef0 1, 100 subsets of min(1000, N) items, seed
  2020 (torch-fidelity defaults); IS: 10 splits of shuffled logits, seed 2020.

rFID compares reconstructions with their originals (equal counts required); gFID compares
samples with a reference folder or precomputed statistics (an `.npz` holding `mu` and `sigma`,
e.g. our `save_statistics` output or an ADM reference batch). Numbers are only comparable with
the same reference set, image count and resolution.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.errors import TokError
from ..core.io import atomic_path
from ..core.media import list_images
from .checks import check_finite
from .weights import INCEPTION_FID, load_state_dict_safely, resolve

ImageSource = str | os.PathLike | Tensor | Iterable[Tensor]
FID_LAYER = "2048"
IS_LAYER = "logits_unbiased"


def to_uint8(images: Tensor, what: str = "images") -> Tensor:
    """(B, 3, H, W) float in [0, 1] or uint8 -> uint8, the way PNGs are written (round(255·x))."""
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] != 3:
        raise TokError(f"{what}: expected RGB images (B, 3, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images
    check_finite(images, what)
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)


def _read_uint8(path: Path) -> Tensor:
    # Exactly torch-fidelity's folder reader: PIL .convert("RGB") then pil_to_tensor.
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.functional import pil_to_tensor

    try:
        with Image.open(path) as img:
            return pil_to_tensor(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise TokError(f"{path}: cannot read image ({e})") from None


def iter_batches(source: ImageSource, batch_size: int, what: str) -> Iterator[Tensor]:
    """uint8 batches from a folder, a tensor (B, 3, H, W) or an iterable of such tensors.

    Folder images are batched while they share a size (Inception resizes each to 299 anyway)."""
    if isinstance(source, (str, os.PathLike)):
        batch: list[Tensor] = []
        for path in list_images(source):
            image = _read_uint8(path)
            if batch and image.shape != batch[0].shape or len(batch) == batch_size:
                yield torch.stack(batch)
                batch = []
            batch.append(image)
        if batch:
            yield torch.stack(batch)
    elif isinstance(source, Tensor):
        images = to_uint8(source, what)
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size]
    else:
        for item in source:
            yield to_uint8(item, what)


_EXTRACTORS: dict[tuple, torch.nn.Module] = {}


def inception(layers: tuple[str, ...], weights: str | os.PathLike | None = None, device: str | torch.device | None = None):
    """torch-fidelity's Inception feature extractor for `layers`, built once per process."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = resolve(INCEPTION_FID, weights)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    key = (layers, str(path.resolve()), path.stat().st_mtime_ns, str(device))
    if key not in _EXTRACTORS:
        # torch-fidelity unpickles with weights_only=False; check the file is plain tensors first.
        state = load_state_dict_safely(path, INCEPTION_FID.name)
        if "Mixed_7c.branch_pool.conv.weight" not in state:
            raise TokError(f"{path}: not a torch-fidelity Inception-v3 state dict (no Mixed_7c keys)")
        try:
            extractor = FeatureExtractorInceptionV3("inception-v3-compat", list(layers), feature_extractor_weights_path=str(path))
        except RuntimeError as e:
            raise TokError(f"{path}: weights do not fit torch-fidelity's Inception-v3 ({str(e).splitlines()[0]})") from None
        _EXTRACTORS[key] = extractor.to(device)
    return _EXTRACTORS[key]


class InceptionFeatures:
    """Accumulates Inception features of image batches: `update(images)`, then `features(layer)`."""

    def __init__(
        self,
        layers: tuple[str, ...] = (FID_LAYER,),
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ):
        self.layers = tuple(layers)
        self.extractor = inception(self.layers, weights, device)
        self.device = next(self.extractor.parameters()).device
        self._parts: dict[str, list[Tensor]] = {layer: [] for layer in self.layers}

    @torch.no_grad()
    def update(self, images: Tensor) -> None:
        batch = to_uint8(images).to(self.device)
        out = self.extractor(batch)
        for layer, value in zip(self.layers, out):
            self._parts[layer].append(value.cpu())

    def __len__(self) -> int:
        parts = self._parts[self.layers[0]]
        return sum(p.shape[0] for p in parts)

    def features(self, layer: str | None = None) -> Tensor:
        layer = layer or self.layers[0]
        parts = self._parts[layer]
        if not parts:
            raise TokError("no images were given")
        return torch.cat(parts)


def features_of(source: ImageSource, layers=(FID_LAYER,), *, weights=None, device=None, batch_size: int = 64, what: str = "images") -> InceptionFeatures:
    acc = InceptionFeatures(layers, weights, device)
    for batch in iter_batches(source, batch_size, what):
        acc.update(batch)
    return acc


def statistics(features: Tensor) -> dict[str, np.ndarray]:
    """FID statistics of (N, d) features: torch-fidelity's mean and unbiased covariance."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    if features.shape[0] < 2:
        raise TokError(f"FID needs at least 2 images per set, got {features.shape[0]}")
    features = features.detach().cpu()
    return fid_features_to_statistics(features if features.dtype == torch.float64 else features.float())


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    """FID between two sets of statistics (torch-fidelity's formula)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    if stats_1["mu"].shape != stats_2["mu"].shape:
        raise TokError(f"statistics of different feature sizes: {stats_1['mu'].shape} vs {stats_2['mu'].shape}")
    if stats_1["mu"].dtype != stats_2["mu"].dtype or stats_1["sigma"].dtype != stats_2["sigma"].dtype:
        stats_1 = {k: np.asarray(v, np.float64) for k, v in stats_1.items()}
        stats_2 = {k: np.asarray(v, np.float64) for k, v in stats_2.items()}
    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)["frechet_inception_distance"])


def load_statistics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Precomputed statistics: an .npz with `mu` (d,) and `sigma` (d, d) (ADM reference batches too)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {"mu": np.asarray(data["mu"]), "sigma": np.asarray(data["sigma"])}
    except FileNotFoundError:
        raise TokError(f"{path}: no such statistics file") from None
    except (KeyError, ValueError, OSError) as e:
        raise TokError(f"{path}: not a FID statistics .npz with 'mu' and 'sigma' ({e})") from None
    d = stats["mu"].shape
    if len(d) != 1 or stats["sigma"].shape != (d[0], d[0]):
        raise TokError(f"{path}: mu {stats['mu'].shape} and sigma {stats['sigma'].shape} do not fit together")
    return stats


def save_statistics(source: ImageSource, path: str | os.PathLike, **opts) -> Path:
    """Compute FID statistics of a set of images and write them (atomically) to an .npz."""
    stats = statistics(features_of(source, **opts).features())
    path = Path(path)
    if path.suffix != ".npz":
        raise TokError(f"{path}: statistics files end in .npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **stats)
    return path


def _is_stats_file(source: ImageSource) -> bool:
    return isinstance(source, (str, os.PathLike)) and Path(source).suffix == ".npz"


def fid(
    source_1: ImageSource,
    source_2: ImageSource,
    *,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    layer: str = FID_LAYER,
) -> float:
    """FID between two image sets (folders, tensors, batch iterables) or precomputed .npz statistics.

    Order as torch-fidelity's `input1`, `input2`: the generated (or reconstructed) set first, the
    reference second (FID is symmetric; the order only changes round-off)."""
    stats = []
    for source, what in ((source_1, "first set"), (source_2, "second set")):
        if _is_stats_file(source):
            stats.append(load_statistics(source))
        else:
            feats = features_of(source, (layer,), weights=weights, device=device, batch_size=batch_size, what=what).features()
            stats.append(statistics(feats))
    return frechet_distance(stats[0], stats[1])


def _count(source: ImageSource) -> int | None:
    if isinstance(source, (str, os.PathLike)) and not _is_stats_file(source):
        return len(list_images(source))
    if isinstance(source, Tensor):
        return 1 if source.ndim == 3 else source.shape[0]
    return None


def rfid(reference: ImageSource, reconstruction: ImageSource, **opts) -> float:
    """Reconstruction FID: reconstructions against their originals (same number of images)."""
    n_ref, n_rec = _count(reference), _count(reconstruction)
    if n_ref is not None and n_rec is not None and n_ref != n_rec:
        raise TokError(f"unequal set sizes: {n_ref} originals but {n_rec} reconstructions")
    return fid(reconstruction, reference, **opts)


def gfid(samples: ImageSource, reference: ImageSource, **opts) -> float:
    """Generation FID: samples against a reference folder/tensor or precomputed .npz statistics."""
    return fid(samples, reference, **opts)


def kid(
    source_1: ImageSource, source_2: ImageSource, *, subsets: int = 100, subset_size: int = 1000, seed: int = 2020, layer: str = FID_LAYER, **opts
) -> tuple[float, float]:
    """KID (mean, std) over `subsets` random subsets of min(subset_size, N) items (torch-fidelity)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    f1 = features_of(source_1, (layer,), what="first set", **opts).features()
    f2 = features_of(source_2, (layer,), what="second set", **opts).features()
    size = min(subset_size, f1.shape[0], f2.shape[0])
    if size < 2:
        raise TokError(f"KID needs at least 2 images per set, got {f1.shape[0]} and {f2.shape[0]}")
    out = kid_features_to_metric(
        f1, f2, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False
    )
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


def inception_score(source: ImageSource, *, splits: int = 10, seed: int = 2020, **opts) -> tuple[float, float]:
    """Inception Score (mean, std) over `splits` splits of the shuffled logits (torch-fidelity)."""
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = features_of(source, (IS_LAYER,), **opts).features()
    if logits.shape[0] < splits:
        raise TokError(f"Inception Score with {splits} splits needs at least {splits} images, got {logits.shape[0]}")
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return out["inception_score_mean"], out["inception_score_std"]
