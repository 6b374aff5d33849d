"""XY-Tokenizer training on the shared Trainer: the two official stages, scaled for small models.

The official training code is not released; the fact sheet (§6) gives the recipe's outline:

* **pretrain** ("X"): everything trains except the semantic encoder, which is initialised from a
  Whisper encoder and frozen. Losses: multi-resolution log-mel L1 on the waveform + RVQ
  commitment (+ semantic distillation, below). The official stage also trains an ASR objective
  through a frozen Qwen2.5 LLM; no LLM can be downloaded here, so that term is replaced by
  *semantic distillation*: a linear head on the quantized latents predicts the frozen teacher's
  50 Hz features (cosine loss), which pushes the same kind of content into the codes.
* **posttrain** ("Y"): encoders and quantizer frozen (tokens fixed), the decoder side trains with
  mel + GAN (multi-period and multi-resolution discriminators, hinge) + feature matching.

Whisper weights cannot be downloaded here either: `init_semantic_teacher` maps a Whisper encoder
state dict (Hugging Face `WhisperModel` key names) into `semantic_encoder`, and the tests use a
small random teacher. Without a teacher (the bundled model) the semantic tower trains as a second
acoustic tower and the distillation term is off.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..codecs.xy_tokenizer import XYTokenizer, save_checkpoint
from ..core.errors import TokError
from .audio_data import AudioFolder
from .audio_discriminators import MultiPeriodDiscriminator, MultiResolutionDiscriminator
from .audio_losses import (
    MultiResolutionMelLoss,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)

STAGES = ("pretrain", "posttrain")


@dataclass
class XYLossWeights:
    mel: float = 15.0
    commit: float = 1.0
    semantic: float = 1.0
    adversarial: float = 0.0
    feature_matching: float = 0.0
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    mrd_channels: int = 64


_WHISPER_PREFIX = re.compile(r"^(model\.)?encoder\.")


def whisper_to_semantic_encoder(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Hugging Face Whisper encoder keys -> `semantic_encoder` keys (same layer names; the learned
    `embed_positions.weight` becomes the `positional_embedding` table). Decoder keys are dropped."""
    out = {}
    for key, value in state.items():
        if not _WHISPER_PREFIX.match(key):
            continue
        name = _WHISPER_PREFIX.sub("", key)
        if name == "embed_positions.weight":
            name = "positional_embedding"
        out[name] = value
    if not out:
        raise TokError("the teacher state dict has no Whisper encoder keys (encoder.* or model.encoder.*)")
    return out


def init_semantic_teacher(codec: XYTokenizer, whisper_state: dict[str, Tensor]) -> None:
    """Load a Whisper encoder into `semantic_encoder` (strictly, positions cut to the model's
    table) and freeze it, as the official pretraining does."""
    from ..core.weights import load_strict

    state = whisper_to_semantic_encoder(whisper_state)
    table = codec.semantic_encoder.positional_embedding
    if "positional_embedding" in state:
        state["positional_embedding"] = state["positional_embedding"][: table.shape[0]]
    load_strict(codec.semantic_encoder, state, "semantic teacher")
    codec.semantic_encoder.requires_grad_(False)


class XYTrainingModel(nn.Module):
    """The codec plus training-only parts: the semantic distillation head (not in checkpoints)."""

    def __init__(self, codec: XYTokenizer, stage: str, distill: bool):
        super().__init__()
        if stage not in STAGES:
            raise TokError(f"unknown XY-Tokenizer training stage {stage!r}; use one of {', '.join(STAGES)}")
        self.codec, self.stage = codec, stage
        c = codec.config
        self.semantic_head = nn.Linear(c.dim * c.downsample, c.dim * c.downsample) if distill else None
        if stage == "posttrain":
            for part in (codec.semantic_encoder, codec.semantic_encoder_adapter, codec.acoustic_encoder,
                         codec.pre_rvq_adapter, codec.downsample, codec.quantizer):
                part.requires_grad_(False)

    def forward(self, wav: Tensor) -> dict[str, Tensor]:
        codec = self.codec
        lengths = torch.full((wav.shape[0],), wav.shape[1], device=wav.device, dtype=torch.long)
        frames = torch.div(lengths, codec.config.frame_samples, rounding_mode="floor")
        if self.stage == "posttrain":
            codec.quantizer.eval()  # frozen codebooks: no EMA updates
            with torch.no_grad():
                z, _ = codec.encode_latents(wav, lengths)
                z_q, _, commit = codec.quantizer(z[:, :, : int(frames.max())], frames)
        else:
            z, _ = codec.encode_latents(wav, lengths)
            z_q, _, commit = codec.quantizer(z[:, :, : int(frames.max())], frames)
        out = {"recon": codec.decode_latents(z_q, frames), "commit": commit}
        if self.semantic_head is not None:
            with torch.no_grad():
                mel, mel_lengths = codec.mel(wav, lengths)
                teacher, _ = codec.semantic_encoder(mel, mel_lengths)  # (B, dim, T50), frozen
            steps = z_q.shape[2] * codec.config.downsample
            predicted = self.semantic_head(z_q.transpose(1, 2))  # (B, T, 4 dim): 4 frames per code
            predicted = predicted.reshape(wav.shape[0], steps, -1)
            target = teacher[:, :, :steps].transpose(1, 2)
            out["semantic"] = 1.0 - F.cosine_similarity(predicted, target, dim=-1).mean()
        return out


class XYDiscriminators(nn.Module):
    def __init__(self, weights: XYLossWeights):
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(channels=weights.mpd_channels)
        self.mrd = MultiResolutionDiscriminator(channels=weights.mrd_channels)

    def parts(self) -> list[nn.Module]:
        return [self.mpd, self.mrd]


def generator_losses(model: nn.Module, wav: Tensor, mel_loss: nn.Module, discs: XYDiscriminators | None,
                     weights: XYLossWeights, cache: dict) -> dict[str, Tensor]:
    out = model(wav)
    recon = out["recon"]
    target = wav[:, : recon.shape[1]]
    cache["real"], cache["fake"] = target, recon.detach()
    losses = {"mel": mel_loss(recon, target), "commit": out["commit"]}
    total = weights.mel * losses["mel"] + weights.commit * losses["commit"]
    if "semantic" in out:
        losses["semantic"] = out["semantic"]
        total = total + weights.semantic * out["semantic"]
    if discs is not None:
        for i, disc in enumerate(discs.parts()):
            real, fake = disc(target), disc(recon)
            adv, fm = generator_hinge_loss(fake) / len(fake), feature_matching_loss(real, fake) / len(fake)
            losses[f"adv{i}"], losses[f"fm{i}"] = adv, fm
            total = total + weights.adversarial * adv + weights.feature_matching * fm
    losses["loss"] = total
    return losses


def discriminator_losses(discs: XYDiscriminators, cache: dict) -> dict[str, Tensor]:
    losses = {f"d{i}": discriminator_hinge_loss(d(cache["real"]), d(cache["fake"])) / len(d(cache["real"]))
              for i, d in enumerate(discs.parts())}
    losses["disc_loss"] = sum(losses.values())
    return losses


@torch.no_grad()
def init_codebooks(codec: XYTokenizer, dataset: AudioFolder, num_crops: int = 96) -> None:
    """Run k-means on one large batch of real crops before training (the library initialises on
    the first forward; a training batch of a few crops has far fewer vectors than codes)."""
    wav = torch.stack([dataset[i] for i in range(num_crops)])
    lengths = torch.full((num_crops,), wav.shape[1], dtype=torch.long)
    frames = lengths // codec.config.frame_samples
    codec.train()
    z, _ = codec.encode_latents(wav, lengths)
    codec.quantizer(z[:, :, : int(frames.max())], frames)


def run(
    codec: XYTokenizer,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    stage: str = "pretrain",
    steps: int = 5000,
    batch_size: int = 8,
    crop_seconds: float = 1.28,
    lr: float = 1e-3,
    weights: XYLossWeights | None = None,
    teacher: dict[str, Tensor] | None = None,
    mixed_precision: str = "auto",
    save_every: int = 250,
    log_every: int = 25,
    max_minutes: float | None = None,
) -> Path:
    """Train one stage into `out_dir` (resuming from `out_dir/checkpoint`); writes
    `out_dir/model.safetensors` (fp16, official key layout). `max_minutes` caps wall-clock time."""
    weights = weights or XYLossWeights()
    out_dir = Path(out_dir)
    c = codec.config
    crop = max(1, round(crop_seconds * c.sample_rate / c.frame_samples)) * c.frame_samples
    dataset = AudioFolder(data, c.sample_rate, crop, items_per_epoch=max(batch_size * 50, 64))
    if teacher is not None:
        init_semantic_teacher(codec, teacher)
    if stage == "pretrain" and not (out_dir / "checkpoint").is_dir():
        init_codebooks(codec, dataset)
    model = XYTrainingModel(codec, stage, distill=teacher is not None and weights.semantic > 0)
    mel_loss = MultiResolutionMelLoss(c.sample_rate)
    use_gan = weights.adversarial > 0 or weights.feature_matching > 0
    discs = XYDiscriminators(weights) if use_gan else None
    cache: dict = {}
    train_config = TrainConfig(
        str(out_dir), steps=steps, batch_size=batch_size, lr=lr, betas=(0.8, 0.99), warmup_steps=100,
        save_every=save_every, log_every=log_every, disc_lr=lr, mixed_precision=mixed_precision, grad_clip=1.0,
    )
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else None

    def loss_fn(m: nn.Module, batch: Tensor, step: int) -> dict[str, Tensor]:
        if deadline is not None and time.monotonic() > deadline and train_config.steps > step + 1:
            logger.info("wall-clock cap reached: stopping after step %d", step + 1)
            train_config.steps = step + 1
        return generator_losses(m, batch, mel_loss, discs, weights, cache)

    trainer = Trainer(
        train_config, model, dataset, loss_fn,
        discriminator=discs,
        disc_loss_fn=(lambda d, m, batch, step: discriminator_losses(d, cache)) if discs is not None else None,
    )
    trainer.fit()
    # The EMA codebooks follow the raw encoder, so the raw (not parameter-EMA) weights are kept.
    trained = trainer.final_model(use_ema=False).codec.eval()
    return save_checkpoint(trained, out_dir / "model.safetensors")


def train_from_cli(card, data, out_dir, *, stage: str, steps: int, batch_size: int, lr: float, precision: str,
                   gan_weight: float, max_minutes: float | None, teacher: str | os.PathLike | None = None) -> Path:
    """`tok train --model xy-tokenizer-...`: stage `all` runs pretraining, then post-training with
    the discriminators when `gan_weight` > 0 (narrow discriminators for non-official presets;
    `max_minutes` is split 2:1 between the two). `teacher`: a Whisper encoder state dict."""
    from ..codecs.xy_tokenizer import load_weights
    from ..core.weights import WeightSource, read_state_dict

    codec = card.builder(card)
    out_dir = Path(out_dir)
    official = codec.config.dim == 768
    discs = {} if official else {"mpd_channels": (8, 16, 32, 64, 64), "mrd_channels": 16}
    teacher_state = read_state_dict(teacher) if teacher is not None else None
    stages = {"all": ("pretrain", "posttrain") if gan_weight > 0 else ("pretrain",)}.get(stage, (stage,))
    if any(s not in STAGES for s in stages):
        raise TokError(f"XY-Tokenizer stages are all, {', '.join(STAGES)}; got {stage!r}")
    share = {"pretrain": 2 / 3 if len(stages) == 2 else 1.0, "posttrain": 1 / 3 if len(stages) == 2 else 1.0}
    path = None
    for name in stages:
        if name == "posttrain":
            previous = out_dir / "pretrain" / "model.safetensors"
            if not previous.is_file():
                raise TokError(f"{previous}: post-training starts from a pretrained model; run --stage pretrain first")
            load_weights(codec, WeightSource("explicit", previous))
        weights = XYLossWeights(
            adversarial=gan_weight if name == "posttrain" else 0.0,
            feature_matching=gan_weight if name == "posttrain" else 0.0,
            **discs,
        )
        path = run(
            codec, data, out_dir / name, stage=name, steps=steps, batch_size=batch_size, lr=lr, weights=weights,
            teacher=teacher_state if name == "pretrain" else None, mixed_precision=precision,
            max_minutes=max_minutes * share[name] if max_minutes else None,
        )
    return path
