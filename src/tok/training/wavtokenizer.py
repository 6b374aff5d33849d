"""WavTokenizer training recipe on the shared Trainer (official recipe, scaled for small models).

Generator loss (official `decoder/experiment.py`, weights in `WavTokenizerLossWeights`):

    45 * mel-L1 + 1000 * commitment
      + [after disc_start] hinge-adv(MPD)/n + hinge-adv(MRD)/n + FM(MPD)/n + FM(MRD)/n
        (+ LS-adv(complex) + FM(complex) when the DAC-style discriminator is on)

Discriminator loss: hinge(MPD)/n + hinge(MRD)/n (+ LS(complex)). AdamW for both, as the
official recipe (which uses lr 2e-4, betas 0.9/0.999, weight decay 0.01). The adaptive
LayerNorm id is always 0 here (the official recipe draws 0..3, which all mean the same
quantizer setting); the EMA codebook is trained by its own EMA, not by the optimiser.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..core.weights import save_tok_checkpoint
from ..codecs.wavtokenizer import WavTokenizer
from .audio_data import AudioFolder
from .audio_discriminators import (
    MultiBandComplexDiscriminator,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
)
from .audio_losses import (
    MelReconstructionLoss,
    MultiResolutionMelLoss,
    discriminator_hinge_loss,
    discriminator_lsgan_loss,
    feature_matching_loss,
    generator_hinge_loss,
    generator_lsgan_loss,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)


@dataclass
class WavTokenizerLossWeights:
    mel: float = 45.0
    commit: float = 1000.0
    adversarial: float = 1.0
    feature_matching: float = 1.0
    disc_start: int = 0
    # Discriminator widths: official (32, 128, 512, 1024, 1024) / 64 / 32; small models shrink them.
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    mrd_channels: int = 64
    complex_channels: int = 0  # 0 = no DAC-style complex discriminator (the official one is never updated, see fact sheet)
    # Steps that train encoder and decoder without the quantizer before k-means initialises the
    # codebook on `kmeans_batches` batches of learned latents (0 = official: k-means on the first
    # batch of a random encoder). See `generator_losses` for why small CPU runs need it.
    vq_warmup_steps: int = 0
    kmeans_batches: int = 4
    # Mean log-mel L1 over three resolutions instead of the official single one: without a GAN
    # (small CPU runs) the single-resolution loss leaves phase free and speech smeared.
    multi_resolution_mel: bool = False


class AudioDiscriminators(nn.Module):
    """The recipe's discriminators as one module (one optimizer): `mpd`, `mrd`, optional `complex`."""

    def __init__(self, weights: WavTokenizerLossWeights):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(channels=weights.mpd_channels)
        self.mrd = MultiResolutionDiscriminator(channels=weights.mrd_channels)
        self.complex = MultiBandComplexDiscriminator(channels=weights.complex_channels) if weights.complex_channels else None

    def parts(self) -> list[tuple[str, nn.Module]]:
        parts = [("mpd", self.mpd), ("mrd", self.mrd)]
        return parts + ([("complex", self.complex)] if self.complex is not None else [])


def generator_losses(model: WavTokenizer, audio: Tensor, step: int, mel_loss: nn.Module,
                     discs: AudioDiscriminators | None, weights: WavTokenizerLossWeights, cache: dict) -> dict[str, Tensor]:
    """The generator's losses for one batch.

    During `vq_warmup_steps` the latents go to the decoder unquantized. Why: a randomly
    initialised SEANet gives nearly identical latents for every frame (measured on speech: mean
    norm 0.48, frame spread 0.008), so k-means on them and the 1000x commitment loss lock the
    encoder into a handful of codes (5-60 of 4096 used per batch in the first 25 steps on CPU).
    The official run gets out of it over 1M steps; a 30-minute CPU run does not.
    """
    if step < weights.vq_warmup_steps:
        recon = model.decode_features(model.encode_latents(audio))
        commit = recon.new_zeros(())
    else:
        out = model(audio)
        recon, commit = out.recon, out.losses["commit"]
    recon = recon[..., : audio.shape[-1]]
    cache["fake"], cache["real"] = recon.detach(), audio
    losses = {"mel": mel_loss(recon, audio), "commit": commit}
    if step >= weights.vq_warmup_steps:  # codebook use in this batch: a collapse shows up here first
        losses["codes_used"] = torch.tensor(float(out.tokens.streams[0].unique().numel()))
    total = weights.mel * losses["mel"] + weights.commit * losses["commit"]
    if discs is not None and step >= weights.disc_start:
        for name, disc in discs.parts():
            real, fake = disc(audio), disc(recon)
            n = len(real)
            if name == "complex":
                adv, fm = generator_lsgan_loss(fake), feature_matching_loss(real, fake)
            else:
                adv, fm = generator_hinge_loss(fake) / n, feature_matching_loss(real, fake) / n
            losses[f"adv_{name}"], losses[f"fm_{name}"] = adv, fm
            total = total + weights.adversarial * adv + weights.feature_matching * fm
    losses["loss"] = total
    return losses


def discriminator_losses(discs: AudioDiscriminators, cache: dict) -> dict[str, Tensor]:
    total = 0.0
    losses = {}
    for name, disc in discs.parts():
        real, fake = disc(cache["real"]), disc(cache["fake"])
        if name == "complex":
            loss = discriminator_lsgan_loss(real, fake)
        else:
            loss = discriminator_hinge_loss(real, fake) / len(real)
        losses[f"d_{name}"] = loss
        total = total + loss
    losses["disc_loss"] = total
    return losses


def save_checkpoint(tokenizer: WavTokenizer, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the whole model (our key layout) as safetensors in `dtype`, config in the metadata.

    The codebook is stored in `dtype` too: loading upcasts every tensor to float32, and encoder
    and decoder then share that one codebook, so ids stay consistent with the stored weights.
    """
    return save_tok_checkpoint(tokenizer, path, "wavtokenizer", tokenizer.config.to_dict(), dtype)


def run(
    tokenizer: WavTokenizer,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    steps: int = 5000,
    batch_size: int = 8,
    crop_seconds: float = 1.0,
    lr: float = 2e-4,
    mixed_precision: str = "auto",
    weights: WavTokenizerLossWeights | None = None,
    save_every: int = 250,
    log_every: int = 25,
    max_minutes: float | None = None,
) -> Path:
    """Train `tokenizer` on the audio under `data`; writes `out_dir/model.safetensors` (fp16).

    Resumes from `out_dir/checkpoint` when it exists. `max_minutes` caps the wall-clock time:
    training stops after the step that crosses it (and checkpoints there).
    """
    weights = weights or WavTokenizerLossWeights()
    out_dir = Path(out_dir)
    config = tokenizer.config
    dataset = AudioFolder(data, config.sample_rate, int(crop_seconds * config.sample_rate), items_per_epoch=max(batch_size * 50, 64))
    mel_loss = (MultiResolutionMelLoss if weights.multi_resolution_mel else MelReconstructionLoss)(config.sample_rate)
    use_gan = weights.adversarial > 0 or weights.feature_matching > 0
    discs = AudioDiscriminators(weights) if use_gan else None
    cache: dict = {}
    train_config = TrainConfig(
        str(out_dir), steps=steps, batch_size=batch_size, lr=lr, betas=(0.9, 0.999), weight_decay=0.01,
        warmup_steps=50, save_every=save_every, log_every=log_every, disc_lr=lr, disc_start=weights.disc_start,
        mixed_precision=mixed_precision, grad_clip=1000.0,
    )
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else None

    def loss_fn(model: nn.Module, batch: Tensor, step: int) -> dict[str, Tensor]:
        codebook_ready = bool(model.quantizer.vq._codebook.initted)
        if weights.vq_warmup_steps and step >= weights.vq_warmup_steps and not codebook_ready:
            # k-means on several batches of the warmed-up encoder's latents (train-mode call).
            with torch.no_grad():
                crops = torch.stack([dataset[i] for i in range(weights.kmeans_batches * batch_size)]).to(batch.device)
                model.quantize(model.encode_latents(crops))
        if deadline is not None and time.monotonic() > deadline and train_config.steps > step + 1:
            logger.info("wall-clock cap reached: stopping after step %d", step + 1)
            train_config.steps = step + 1  # the trainer's loop reads this bound every step
        return generator_losses(model, batch, step, mel_loss, discs, weights, cache)

    trainer = Trainer(
        train_config, tokenizer, dataset, loss_fn,
        discriminator=discs,
        disc_loss_fn=(lambda d, model, batch, step: discriminator_losses(d, cache)) if discs is not None else None,
    )
    trainer.fit()
    # The EMA codebook follows the raw encoder, so the raw (not parameter-EMA) weights are kept.
    model = trainer.final_model(use_ema=False).eval()
    return save_checkpoint(model, out_dir / "model.safetensors")


def train_from_cli(card, data, out_dir, steps: int, batch_size: int, lr: float, precision: str, gan_weight: float,
                   max_minutes: float | None) -> Path:
    """`tok train --model wavtokenizer-...`: `--gan-weight` > 0 turns on the discriminators
    (narrow ones for non-official presets); non-official presets warm up 100 steps without the quantizer
    and use the multi-resolution mel loss."""
    tokenizer = card.builder(card)
    official = tokenizer.config.backbone_dim == 768
    small = {"mpd_channels": (8, 16, 32, 64, 64), "mrd_channels": 16, "vq_warmup_steps": 100, "multi_resolution_mel": True}
    weights = WavTokenizerLossWeights(adversarial=gan_weight, feature_matching=gan_weight, **({} if official else small))
    return run(tokenizer, data, out_dir, steps=steps, batch_size=batch_size, lr=lr,
               mixed_precision=precision, weights=weights, max_minutes=max_minutes)
