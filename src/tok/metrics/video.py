"""Video metrics: FVD with the I3D network, per-frame PSNR / SSIM.

Conventions: videos are (B, 3, T, H, W) float in [0, 1] (or uint8), RGB, channel-first.

- FVD follows StyleGAN-V (`fvd2048_16f`): the TorchScript port of the TF-Hub I3D (Kinetics-400),
  `i3d_torchscript.pt`, called on uint8 clips with `rescale=True, resize=True,
  return_features=True` (it maps to [-1, 1] and resizes frames to 224×224 itself) and giving
  400-d features; then the Fréchet distance of their means and unbiased covariances (the FID
  formula, torch-fidelity's implementation). Report the number of clips, frames per clip
  (StyleGAN-V: 2048 clips of 16 frames), frame stride and resolution: FVD is not comparable
  across any of them, nor across I3D ports.
- per-frame PSNR / SSIM: the image metrics (`metrics.image`, data range 1.0) on every frame,
  averaged over frames and clips.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor

from ..core.errors import TokError
from .checks import check_finite, check_pair
from .fid import frechet_distance, statistics
from .image import psnr_per_image, ssim_per_image
from .weights import I3D_FVD, resolve

_DETECTORS: dict[tuple, torch.jit.ScriptModule] = {}


def as_videos(x: Tensor, what: str) -> Tensor:
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[1] != 3:
        raise TokError(f"{what}: expected videos (B, 3, T, H, W), got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        check_finite(x, what)
    return x


def i3d(weights: str | os.PathLike | None = None, device: str | torch.device | None = None) -> torch.jit.ScriptModule:
    """The TorchScript I3D detector, loaded once per file and device."""
    path = resolve(I3D_FVD, weights)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
    if key not in _DETECTORS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is the file's format
                _DETECTORS[key] = torch.jit.load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as e:
            raise TokError(f"{path}: not a TorchScript I3D file ({str(e).splitlines()[0]})") from None
    return _DETECTORS[key]


@torch.no_grad()
def i3d_features(videos: Tensor, weights=None, device=None, batch_size: int = 16) -> Tensor:
    """(B, 3, T, H, W) -> (B, 400) float64 I3D features."""
    videos = as_videos(videos, "videos")
    detector = i3d(weights, device)
    dev = next(iter(detector.parameters())).device if list(detector.parameters()) else torch.device("cpu")
    if videos.dtype != torch.uint8:
        videos = (videos.float().clamp(0, 1) * 255).round().to(torch.uint8)
    out = [
        detector(videos[i : i + batch_size].to(dev), rescale=True, resize=True, return_features=True).double().cpu()
        for i in range(0, videos.shape[0], batch_size)
    ]
    return torch.cat(out)


def fvd(reference: Tensor, reconstruction: Tensor, *, weights=None, device=None, batch_size: int = 16) -> float:
    """Fréchet Video Distance between two sets of clips (at least 2 each; same frame count)."""
    ref, rec = as_videos(reference, "reference"), as_videos(reconstruction, "reconstruction")
    if ref.shape[2] != rec.shape[2]:
        raise TokError(f"clips of different lengths: {ref.shape[2]} vs {rec.shape[2]} frames")
    if min(ref.shape[0], rec.shape[0]) < 2:
        raise TokError(f"FVD needs at least 2 clips per set, got {ref.shape[0]} and {rec.shape[0]}")
    f_ref = i3d_features(ref, weights, device, batch_size)
    f_rec = i3d_features(rec, weights, device, batch_size)
    return frechet_distance(statistics(f_rec), statistics(f_ref))


def _frames(reference: Tensor, reconstruction: Tensor) -> tuple[Tensor, Tensor]:
    ref, rec = as_videos(reference, "reference"), as_videos(reconstruction, "reconstruction")
    check_pair(ref, rec)
    flat = lambda v: v.transpose(1, 2).reshape(-1, 3, *v.shape[-2:])
    return flat(ref), flat(rec)


def video_psnr(reference: Tensor, reconstruction: Tensor, data_range: float = 1.0) -> float:
    """Mean PSNR over all frames of all clips."""
    return float(psnr_per_image(*_frames(reference, reconstruction), data_range).mean())


def video_ssim(reference: Tensor, reconstruction: Tensor, data_range: float = 1.0, **opts) -> float:
    """Mean SSIM over all frames of all clips."""
    return float(ssim_per_image(*_frames(reference, reconstruction), data_range, **opts).mean())
