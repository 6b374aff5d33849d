"""Paired image metrics: PSNR, SSIM, LPIPS.

Conventions (the same for all three): images are RGB, channel-first (B, 3, H, W) or (3, H, W),
float in [0, 1] (uint8 tensors are divided by 255). Each metric is computed per image and the
functions return the arithmetic mean over the batch; the `*_per_image` forms return the (B,)
values so an evaluation can average over a whole dataset.

- PSNR: 10·log10(data_range² / MSE), MSE over all pixels and the 3 channels of one image,
  data_range 1.0 (skimage `peak_signal_noise_ratio` on [0, 1] floats). Identical images give inf.
- SSIM: skimage `structural_similarity` conventions: 7×7 uniform window, K1 = 0.01, K2 = 0.03,
  sample covariance, data_range 1.0, valid-window mean per channel, mean over RGB. With
  `gaussian=True`: Wang et al.'s 11×11 Gaussian window, σ = 1.5, population covariance.
  LlamaGen-derived papers pass data_range=2.0 on [0, 1] images (inflated SSIM); pass
  `data_range=2.0` to reproduce that, and say so.
- LPIPS: the `lpips` package v0.1, AlexNet backbone by default (the usual evaluation choice;
  VGG is the usual training loss), inputs mapped from [0, 1] to [-1, 1], spatial mean.
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.errors import TokError
from .checks import as_image_batch, check_pair
from .weights import LPIPS_BACKBONES, load_state_dict_safely, resolve


def _pair(reference: Tensor, reconstruction: Tensor) -> tuple[Tensor, Tensor]:
    ref = as_image_batch(reference, "reference")
    rec = as_image_batch(reconstruction, "reconstruction")
    check_pair(ref, rec)
    return ref, rec


def psnr_per_image(reference: Tensor, reconstruction: Tensor, data_range: float = 1.0) -> Tensor:
    """(B,) PSNR in dB, float64."""
    ref, rec = _pair(reference, reconstruction)
    mse = (ref.double() - rec.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def psnr(reference: Tensor, reconstruction: Tensor, data_range: float = 1.0) -> float:
    """Mean per-image PSNR in dB over the batch (see the module docstring)."""
    return float(psnr_per_image(reference, reconstruction, data_range).mean())


def bits_matched_thumbnail(images: Tensor, bits: float) -> tuple[int, Tensor]:
    """The baseline a tokenizer should beat: each image (B, 3, H, W) in [0, 1] stored as the
    smallest s x s RGB thumbnail at 8 bits per channel whose 24 s^2 bits are >= `bits`
    (antialiased bicubic down), then bicubic up to H x W. Returns s and the upsampled images."""
    side = math.ceil(math.sqrt(bits / 24))
    small = F.interpolate(images, size=(side, side), mode="bicubic", antialias=True, align_corners=False)
    small = (small.clamp(0, 1) * 255).round() / 255
    return side, F.interpolate(small, size=images.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def thumbnail_baseline(images: Tensor, bits: float) -> tuple[int, Tensor]:
    """`bits_matched_thumbnail`'s s and (B,) PSNR in dB."""
    side, up = bits_matched_thumbnail(images, bits)
    return side, psnr_per_image(images, up)


def _window(gaussian: bool, win_size: int, sigma: float, device: torch.device) -> Tensor:
    if not gaussian:
        return torch.full((win_size,), 1.0 / win_size, dtype=torch.float64, device=device)
    radius = int(3.5 * sigma + 0.5)  # skimage filters with truncate=3.5: an 11-tap window at sigma 1.5
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter(x: Tensor, w: Tensor) -> Tensor:
    """Separable 'valid' filtering of (N, 1, H, W): the window mean at every fully inside position
    (skimage filters with reflection, then crops the border, which leaves exactly these values)."""
    k = w.numel()
    x = F.conv2d(x, w.view(1, 1, 1, k))
    return F.conv2d(x, w.view(1, 1, k, 1))


def ssim_per_image(
    reference: Tensor,
    reconstruction: Tensor,
    data_range: float = 1.0,
    *,
    gaussian: bool = False,
    win_size: int = 7,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """(B,) SSIM, float64, mean over channels (see the module docstring)."""
    ref, rec = _pair(reference, reconstruction)
    w = _window(gaussian, win_size, sigma, ref.device)
    k = w.numel()
    batch, channels, height, width = ref.shape
    if height < k or width < k:
        raise TokError(f"SSIM needs images of at least {k}x{k} pixels, got {height}x{width}")
    x = ref.double().reshape(batch * channels, 1, height, width)
    y = rec.double().reshape(batch * channels, 1, height, width)
    ux, uy = _filter(x, w), _filter(y, w)
    uxx, uyy, uxy = _filter(x * x, w), _filter(y * y, w), _filter(x * y, w)
    # skimage: sample covariance (N/(N-1)) for the uniform window, population for the Gaussian one.
    cov_norm = k * k / (k * k - 1) if not gaussian else 1.0
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(batch, channels, -1).mean(dim=(1, 2))


def ssim(reference: Tensor, reconstruction: Tensor, data_range: float = 1.0, **opts) -> float:
    """Mean per-image SSIM over the batch (see `ssim_per_image` for options)."""
    return float(ssim_per_image(reference, reconstruction, data_range, **opts).mean())


class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al., arXiv 1801.03924) with explicitly resolved backbone weights.

    The `lpips` package ships its linear heads; the ImageNet backbone is torchvision's file,
    found by `metrics.weights.resolve` (explicit path, torch hub cache, download when online).
    """

    def __init__(self, net: str = "alex", backbone_weights: str | os.PathLike | None = None, device: str | torch.device | None = None):
        super().__init__()
        if net not in LPIPS_BACKBONES:
            raise TokError(f"unknown LPIPS backbone {net!r}; expected one of {', '.join(LPIPS_BACKBONES)}")
        path = resolve(LPIPS_BACKBONES[net], backbone_weights)
        state = load_state_dict_safely(path, LPIPS_BACKBONES[net].name)
        import lpips

        self.net_name = net
        self.model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        _load_backbone(self.model.net, state, path)
        device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.eval().requires_grad_(False).to(device)

    @torch.inference_mode()
    def per_image(self, reference: Tensor, reconstruction: Tensor) -> Tensor:
        """(B,) LPIPS distances for images in [0, 1]."""
        ref, rec = _pair(reference, reconstruction)
        device = next(self.model.parameters()).device
        d = self.model(rec.float().to(device), ref.float().to(device), normalize=True)
        return d.flatten().double().cpu()

    def forward(self, reference: Tensor, reconstruction: Tensor) -> float:
        return float(self.per_image(reference, reconstruction).mean())


def _load_backbone(trunk: nn.Module, state: dict[str, Tensor], path: os.PathLike) -> None:
    """Copy torchvision `features.<i>.*` weights into lpips' slices (which hold features[i] by index)."""
    own: dict[str, Tensor] = {}
    for slice_name, block in trunk.named_children():
        if not slice_name.startswith("slice"):
            continue
        for index, layer in block.named_children():
            for key, value in layer.state_dict().items():
                own[f"features.{index}.{key}"] = value
    needed = sorted(own)
    missing = [k for k in needed if k not in state]
    if missing:
        raise TokError(f"{path}: not a torchvision backbone for LPIPS: missing {', '.join(missing[:3])}")
    for key, value in own.items():
        if state[key].shape != value.shape:
            raise TokError(f"{path}: {key} has shape {tuple(state[key].shape)}, LPIPS expects {tuple(value.shape)}")
        value.copy_(state[key])


_LPIPS_CACHE: dict[tuple[str, str], LPIPS] = {}


def lpips(reference: Tensor, reconstruction: Tensor, net: str = "alex", backbone_weights: str | os.PathLike | None = None) -> float:
    """Mean LPIPS over the batch; the network is built once per (net, weights) per process."""
    key = (net, str(backbone_weights))
    if key not in _LPIPS_CACHE:
        _LPIPS_CACHE[key] = LPIPS(net, backbone_weights)
    return _LPIPS_CACHE[key](reference, reconstruction)


__all__ = ["LPIPS", "lpips", "psnr", "psnr_per_image", "ssim", "ssim_per_image"]
