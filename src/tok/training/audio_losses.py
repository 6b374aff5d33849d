"""Losses for audio codec training: log-mel L1, GAN (hinge and least squares) over lists of
sub-discriminator outputs, and feature matching. Used by WavTokenizer and XY-Tokenizer recipes.

Formulas follow Vocos/WavTokenizer (`decoder/loss.py`): hinge terms are summed over
sub-discriminators (the caller divides by their number if wanted), the generator hinge term is
mean(relu(1 - D(fake))), feature matching is the mean absolute difference of every feature map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .audio_discriminators import DiscOutput


class MelReconstructionLoss(nn.Module):
    """L1 between log-mel magnitude spectrograms (log clipped at 1e-7), torchaudio MelSpectrogram
    with power 1 and centre padding. WavTokenizer: 24 kHz, n_fft 1024, hop 256, 100 mels."""

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100):
        super().__init__()
        import torchaudio

        self.mel_spec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=True, power=1
        )

    def log_mel(self, audio: Tensor) -> Tensor:
        return self.mel_spec(audio.float()).clamp(min=1e-7).log()

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(self.log_mel(prediction), self.log_mel(target))


class MultiResolutionMelLoss(nn.Module):
    """Mean of `MelReconstructionLoss` over several (n_fft, hop, n_mels) resolutions. Short
    windows pin down timing and long ones pitch, so decoders trained without a GAN learn
    consistent phase sooner than with one resolution (used by XY-Tokenizer's recipe and the
    small WavTokenizer)."""

    RESOLUTIONS = ((512, 128, 64), (1024, 256, 80), (2048, 512, 128))

    def __init__(self, sample_rate: int, resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS):
        super().__init__()
        self.losses = nn.ModuleList(MelReconstructionLoss(sample_rate, n, h, m) for n, h, m in resolutions)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return sum(loss(prediction, target) for loss in self.losses) / len(self.losses)


def discriminator_hinge_loss(real: DiscOutput, fake: DiscOutput) -> Tensor:
    """sum_k mean(relu(1 - D_k(real))) + mean(relu(1 + D_k(fake)))."""
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))


def generator_hinge_loss(fake: DiscOutput) -> Tensor:
    """sum_k mean(relu(1 - D_k(fake)))."""
    return sum(F.relu(1 - f).mean() for f, _ in fake)


def discriminator_lsgan_loss(real: DiscOutput, fake: DiscOutput) -> Tensor:
    """Least squares: sum_k mean(D_k(fake)^2) + mean((1 - D_k(real))^2) (DAC)."""
    return sum(f.pow(2).mean() + (1 - r).pow(2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_lsgan_loss(fake: DiscOutput) -> Tensor:
    return sum((1 - f).pow(2).mean() for f, _ in fake)


def feature_matching_loss(real: DiscOutput, fake: DiscOutput) -> Tensor:
    """sum over sub-discriminators and layers of mean |F(real) - F(fake)| (real maps detached)."""
    total = torch.zeros(())
    for (_, real_maps), (_, fake_maps) in zip(real, fake):
        for r, f in zip(real_maps, fake_maps):
            total = total.to(f.device) + (r.detach() - f).abs().mean()
    return total
