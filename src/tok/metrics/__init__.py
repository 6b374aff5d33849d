"""Metrics papers report for tokenizers, each module one group (conventions in each docstring).

Paired metrics share the signature `metric(reference, reconstruction, **opts) -> float` (mean
over the batch) plus a `*_per_image` / `*_per_item` form returning the per-item values.
"""

from .audio import mel_distance, pesq, si_sdr, stoi
from .codebook import (
    CodebookStats,
    bits_per_pixel,
    bits_per_second,
    codebook_usage,
    perplexity,
)
from .image import LPIPS, lpips, psnr, ssim
from .shape import chamfer_distance, f_score, volumetric_iou
from .video import fvd, video_psnr, video_ssim

__all__ = [
    "LPIPS",
    "CodebookStats",
    "bits_per_pixel",
    "bits_per_second",
    "chamfer_distance",
    "codebook_usage",
    "f_score",
    "fvd",
    "lpips",
    "mel_distance",
    "perplexity",
    "pesq",
    "psnr",
    "si_sdr",
    "ssim",
    "stoi",
    "video_psnr",
    "video_ssim",
    "volumetric_iou",
]
