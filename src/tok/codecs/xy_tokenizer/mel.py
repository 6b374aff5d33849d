"""Whisper-style log-mel features as a batched tensor op (XY-Tokenizer's input features).

The official extractor pads every input to 30 s and runs on NumPy; this one works on any length
and on any device. Per item of `num_samples` samples it yields the same frames the official one
yields for that item inside its 30-s window: n_fft 400, hop 160, periodic Hann, power spectrum,
80 Slaney mel bins over 0-8 kHz with Slaney area norm, log10 floored at 1e-10, clamped to the
item's maximum - 8, then (x + 4) / 4.

Frame n is centred on sample 160 n. The left edge is reflect-padded (as `torch.stft(center=True)`
does) and the right edge sees zeros, which is what the official window holds after a clip shorter
than 30 s. The clamp maximum is taken over every frame that touches the item's samples, so an item
gets the same features alone or in a zero-padded batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _hz_to_mel_slaney(hz: Tensor) -> Tensor:
    # Linear below 1 kHz, logarithmic above (Slaney's Auditory Toolbox).
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(hz < min_log_hz, hz / f_sp, min_log_mel + torch.log(hz.clamp(min=1e-10) / min_log_hz) / logstep)


def _mel_to_hz_slaney(mel: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(mel < min_log_mel, mel * f_sp, min_log_hz * torch.exp(logstep * (mel - min_log_mel)))


def slaney_mel_filters(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None) -> Tensor:
    """Triangular Slaney-scale filters with Slaney area normalisation, shape (n_mels, n_freqs), float64."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    mel_points = torch.linspace(
        float(_hz_to_mel_slaney(torch.tensor(f_min, dtype=torch.float64))),
        float(_hz_to_mel_slaney(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_points = _mel_to_hz_slaney(mel_points)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (fft_freqs - lower) / (centre - lower)
    falling = (upper - fft_freqs) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return filters * (2.0 / (upper - lower))


class WhisperLogMel(nn.Module):
    """waveform (B, L) + lengths (B,) -> log-mel (B, n_mels, T_max + 1) + frame lengths (B,).

    The frame count of an item of L samples is ceil(L / hop), the official count. One frame past
    the longest item is kept because the encoder's first convolution reads it for its last valid
    frame (as it does in the official 30-s window).
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 400, hop_length: int = 160, n_mels: int = 80):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        # Not part of the checkpoint (the official extractor has no weights): persistent=False.
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        with torch.device("cpu"):  # computed eagerly even when the model is built on `meta`
            filters = slaney_mel_filters(n_fft // 2 + 1, n_mels, sample_rate).float()
        self.register_buffer("filters", filters, persistent=False)

    def num_frames(self, num_samples: Tensor) -> Tensor:
        return torch.div(num_samples + self.hop_length - 1, self.hop_length, rounding_mode="floor")

    def forward(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if wav.ndim != 2:
            raise ValueError(f"expected a waveform batch (B, L), got {tuple(wav.shape)}")
        half = self.n_fft // 2
        if int(lengths.min()) <= half:
            raise ValueError(f"every item needs more than {half} samples, got {int(lengths.min())}")
        with torch.autocast(wav.device.type, enabled=False):  # log-mel in fp32 under any autocast
            return self._log_mel(wav.float(), lengths)

    def _log_mel(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        half = self.n_fft // 2
        # Zero everything past each item's end: padding of a batch must look like silence.
        positions = torch.arange(wav.shape[1], device=wav.device)
        wav = wav * (positions[None] < lengths[:, None])
        frames = self.num_frames(lengths)
        total = int(frames.max()) + 2  # frames 0 .. T+1 touch the signal; T is read by conv1
        needed = (total - 1) * self.hop_length + half
        left = torch.flip(wav[:, 1 : half + 1], dims=[1])
        right = wav.new_zeros(wav.shape[0], max(0, needed - wav.shape[1]))
        padded = torch.cat([left, wav[:, :needed], right], dim=1)
        spec = torch.stft(padded, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True)
        power = spec[..., :total].abs().pow(2)  # (B, F, total)
        log_mel = torch.clamp(self.filters @ power, min=1e-10).log10()
        touching = torch.arange(total, device=wav.device)[None, :] < (frames + 2)[:, None]
        peak = log_mel.masked_fill(~touching[:, None, :], -math.inf).amax(dim=(1, 2), keepdim=True)
        log_mel = torch.maximum(log_mel, peak - 8.0)
        return ((log_mel + 4.0) / 4.0)[..., : total - 1], frames
