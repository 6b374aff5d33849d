"""HieraTok training recipe on the shared trainer: one stage, end to end.

Loss (fact sheet section 9, all our choices: the paper's recipe is not public):
    w_l1 * L1 + w_l2 * L2 + w_lpips * LPIPS + w_kl * KL (KL variant, per-element mean)
    + w_gan * hinge GAN (PatchGAN, from `disc_start` on)
FSQ has no auxiliary loss (no codebook, nothing to commit to). An optional `align_fn(model,
images, output) -> loss` adds a semantic alignment term (e.g. cosine to frozen DINOv2 features);
it is a hook because such teachers cannot be downloaded offline here.

Data: the photos resized (shorter side) to several sizes from the model resolution up to 1.5x,
random crops at the model resolution, random flips.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset

from ..core.weights import save_tok_checkpoint
from ..tokenizers.hieratok import HieraTok
from .data import ImageFolder
from .losses import (
    LPIPSLoss,
    PatchDiscriminator,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)

AlignFn = Callable[[nn.Module, Tensor, object], Tensor]


@dataclass
class HieraTokLossWeights:
    l1: float = 1.0
    l2: float = 0.0
    lpips: float = 1.0
    kl: float = 1e-6
    gan: float = 0.1
    disc_start: int = 2000
    align: float = 0.5


def photo_dataset(data: str | os.PathLike, size: int, views: int = 4) -> ConcatDataset:
    resizes = sorted({round(size * (1 + 0.5 * i / max(1, views - 1))) for i in range(views)})
    return ConcatDataset([ImageFolder(data, resize=r, crop=size) for r in resizes])


def make_loss_fn(weights: HieraTokLossWeights, discriminator: nn.Module | None, align_fn: AlignFn | None = None):
    perceptual = LPIPSLoss() if weights.lpips > 0 else None

    def loss_fn(model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        out = model(images)
        recon = out.recon
        losses = {"l1": F.l1_loss(recon, images)}
        total = weights.l1 * losses["l1"]
        if weights.l2:
            losses["l2"] = F.mse_loss(recon, images)
            total = total + weights.l2 * losses["l2"]
        if "kl" in out.losses:
            losses["kl"] = out.losses["kl"]
            total = total + weights.kl * losses["kl"]
        if perceptual is not None:
            losses["lpips"] = perceptual(images, recon)
            total = total + weights.lpips * losses["lpips"]
        if discriminator is not None and step >= weights.disc_start:
            losses["gan"] = hinge_generator_loss(discriminator(recon))
            total = total + weights.gan * losses["gan"]
        if align_fn is not None:
            losses["align"] = align_fn(model, images, out)
            total = total + weights.align * losses["align"]
        losses["loss"] = total
        return losses

    return loss_fn


def disc_loss_fn(disc: nn.Module, model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
    with torch.no_grad():
        recon = model(images).recon
    return {"disc_loss": hinge_discriminator_loss(disc(images), disc(recon.detach()))}


@torch.no_grad()
def set_latent_statistics(tokenizer: HieraTok, dataset, batch_size: int = 32) -> None:
    """KL variant: store the mean and 1/std of the posterior means over `dataset`."""
    tokenizer.eval()
    tokenizer.latent_mean.zero_()
    tokenizer.latent_scale.fill_(1.0)
    latents = []
    for start in range(0, len(dataset), batch_size):
        images = torch.stack([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        latents.append(tokenizer.encode_latents(images.to(tokenizer.device)).cpu())
    z = torch.cat(latents)
    tokenizer.latent_mean.fill_(z.mean().item())
    tokenizer.latent_scale.fill_(1.0 / z.std().clamp_min(1e-6).item())


def save_checkpoint(tokenizer: HieraTok, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the state dict (fp16 by default) as safetensors with the config in the metadata."""
    return save_tok_checkpoint(tokenizer, path, "hieratok", tokenizer.config.to_dict(), dtype)


def run(
    tokenizer: HieraTok,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    steps: int = 5000,
    batch_size: int = 32,
    lr: float = 1e-3,
    weights: HieraTokLossWeights | None = None,
    max_seconds: float | None = None,
    mixed_precision: str = "auto",
    save_every: int = 250,
    align_fn: AlignFn | None = None,
    seed: int = 0,
) -> Path:
    """Train `tokenizer` on the images in `data`; resumes from `out_dir`; writes `out_dir/model.safetensors`."""
    weights = weights or HieraTokLossWeights()
    out_dir = Path(out_dir)
    size = tokenizer.config.image_size
    config = TrainConfig(
        str(out_dir / "train"), steps=steps, batch_size=batch_size, lr=lr, betas=(0.9, 0.95), weight_decay=0.05,
        warmup_steps=min(200, steps // 10 + 1), save_every=save_every, ema_decay=0.999, mixed_precision=mixed_precision,
        max_seconds=max_seconds, lr_decay="cosine", disc_start=weights.disc_start, seed=seed, disc_lr=lr / 4,
    )
    discriminator = PatchDiscriminator(width=32, layers=2) if weights.gan > 0 else None
    trainer = Trainer(
        config, tokenizer, photo_dataset(data, size), make_loss_fn(weights, discriminator, align_fn),
        discriminator=discriminator, disc_loss_fn=disc_loss_fn if discriminator is not None else None,
    )
    start = time.monotonic()
    trainer.fit()
    summary = {"steps": trainer.counter.step, "seconds": round(time.monotonic() - start, 1), "batch_size": batch_size}
    (out_dir / "summary.json").write_text(json.dumps(summary))
    model = trainer.final_model(use_ema=True)
    if model.config.bottleneck == "kl":
        set_latent_statistics(model, ImageFolder(data, resize=size, crop=size, random_crop=False, flip=False))
    return save_checkpoint(model.eval(), out_dir / "model.safetensors")


__all__ = ["HieraTokLossWeights", "photo_dataset", "run", "save_checkpoint"]
