"""Audio metrics: PESQ, STOI / ESTOI, mel distance, SI-SDR (UTMOS lives in `metrics.utmos`).

Conventions: waveforms are mono float tensors in [−1, 1], shaped (T,), (B, T) or (B, 1, T), with
their `sample_rate` passed explicitly. Batched inputs are scored item by item and the functions
return the arithmetic mean; the `*_per_item` forms return the (B,) values.

- PESQ: the `pesq` package (ITU-T P.862 C code). Wide-band mode ('wb', P.862.2) by default at
  16 kHz, 'nb' allowed at 8 or 16 kHz; other rates are resampled to 16 kHz (torchaudio's
  default sinc resampler). PESQ's error codes are never averaged: an utterance PESQ cannot score
  (silence, no utterance found) raises a TokError instead of returning −1.
- STOI: the `pystoi` package (resamples internally to 10 kHz); `extended=True` gives ESTOI.
  Silent or too short signals (fewer than 30 non-silent frames) raise a TokError.
- mel distance: DAC's multi-scale log-mel L1 (`conf/base.yml`): STFT windows 32…2048 (hop w/4,
  Hann, centred, reflect padding), 5…320 Slaney mel bands (librosa filters, 0 Hz to Nyquist),
  log10 of magnitudes clamped at 1e-5, L1 mean per scale, summed over the 7 scales.
- SI-SDR (dB): both signals made zero-mean; α = ⟨ŝ, s⟩/‖s‖², SI-SDR = 10·log10(‖αs‖² / ‖αs − ŝ‖²).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.errors import TokError
from .checks import check_finite

DAC_MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DAC_MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)


def as_waveforms(x: Tensor | np.ndarray, what: str) -> Tensor:
    """(T,), (B, T) or (B, 1, T) -> (B, T) float64; empty or non-finite audio refused."""
    x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x[None]
    elif x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 2:
        raise TokError(f"{what}: expected mono waveforms (T,), (B, T) or (B, 1, T), got shape {tuple(x.shape)}")
    if x.shape[-1] == 0:
        raise TokError(f"{what}: empty audio (0 samples)")
    check_finite(x.double(), what)
    return x.double()


def _pair(reference, reconstruction) -> tuple[Tensor, Tensor]:
    ref, rec = as_waveforms(reference, "reference"), as_waveforms(reconstruction, "reconstruction")
    if ref.shape[0] != rec.shape[0]:
        raise TokError(f"unequal set sizes: {ref.shape[0]} reference clips but {rec.shape[0]} reconstructions")
    if ref.shape[1] != rec.shape[1]:
        raise TokError(f"mismatched lengths: reference has {ref.shape[1]} samples, reconstruction {rec.shape[1]}")
    return ref, rec


def _check_not_silent(x: Tensor, what: str) -> None:
    silent = (x.abs().amax(dim=-1) == 0).nonzero().flatten().tolist()
    if silent:
        raise TokError(f"{what}: item(s) {silent} are silent (all zeros); this metric cannot score silence")


def resample(x: Tensor, orig: int, new: int) -> Tensor:
    if orig == new:
        return x
    import torchaudio.functional as AF

    return AF.resample(x, orig, new)


def pesq_per_item(reference, reconstruction, sample_rate: int, mode: str = "wb") -> Tensor:
    """(B,) PESQ MOS-LQO scores (see the module docstring)."""
    from pesq import pesq as pesq_score
    from pesq.cypesq import PesqError

    if mode not in ("wb", "nb"):
        raise TokError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    ref, rec = _pair(reference, reconstruction)
    rate = sample_rate if sample_rate in (8000, 16000) and not (mode == "wb" and sample_rate == 8000) else 16000
    ref, rec = resample(ref, sample_rate, rate), resample(rec, sample_rate, rate)
    _check_not_silent(ref, "reference")
    scores = []
    for i in range(ref.shape[0]):
        try:
            scores.append(pesq_score(rate, ref[i].numpy(), rec[i].numpy(), mode))
        except PesqError as e:
            raise TokError(f"PESQ cannot score item {i}: {type(e).__name__} ({e})") from None
    return torch.tensor(scores, dtype=torch.float64)


def pesq(reference, reconstruction, sample_rate: int, mode: str = "wb") -> float:
    return float(pesq_per_item(reference, reconstruction, sample_rate, mode).mean())


def stoi_per_item(reference, reconstruction, sample_rate: int, extended: bool = False) -> Tensor:
    """(B,) STOI (or ESTOI) in [0, 1] (see the module docstring)."""
    from pystoi import stoi as stoi_score

    ref, rec = _pair(reference, reconstruction)
    _check_not_silent(ref, "reference")
    scores = []
    for i in range(ref.shape[0]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi_score(ref[i].numpy(), rec[i].numpy(), sample_rate, extended=extended)
        problems = [str(w.message) for w in caught if "frames" in str(w.message).lower()]
        if problems:
            raise TokError(f"STOI cannot score item {i}: {problems[0]}")
        scores.append(float(value))
    return torch.tensor(scores, dtype=torch.float64)


def stoi(reference, reconstruction, sample_rate: int, extended: bool = False) -> float:
    return float(stoi_per_item(reference, reconstruction, sample_rate, extended).mean())


def si_sdr_per_item(reference, reconstruction, eps: float = 1e-12) -> Tensor:
    """(B,) scale-invariant SDR in dB (see the module docstring)."""
    ref, rec = _pair(reference, reconstruction)
    ref = ref - ref.mean(-1, keepdim=True)
    rec = rec - rec.mean(-1, keepdim=True)
    energy = ref.pow(2).sum(-1)
    if bool((energy == 0).any()):
        raise TokError("reference: a silent (constant) clip has no SI-SDR")
    alpha = (rec * ref).sum(-1) / energy
    target = alpha[:, None] * ref
    return 10 * torch.log10(target.pow(2).sum(-1) / ((target - rec).pow(2).sum(-1) + eps))


def si_sdr(reference, reconstruction) -> float:
    return float(si_sdr_per_item(reference, reconstruction).mean())


@functools.lru_cache(maxsize=32)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)).double()


def _log_mel(x: Tensor, sample_rate: int, window: int, n_mels: int, clamp_eps: float) -> Tensor:
    hop = window // 4
    spec = torch.stft(
        x, n_fft=window, hop_length=hop, window=torch.hann_window(window, dtype=x.dtype), center=True, pad_mode="reflect", return_complex=True
    ).abs()  # (B, F, frames)
    mel = _mel_filters(sample_rate, window, n_mels) @ spec
    return mel.clamp_min(clamp_eps).log10()


def mel_distance_per_item(
    reference,
    reconstruction,
    sample_rate: int,
    windows: tuple[int, ...] = DAC_MEL_WINDOWS,
    n_mels: tuple[int, ...] = DAC_MEL_BANDS,
    clamp_eps: float = 1e-5,
) -> Tensor:
    """(B,) multi-scale log-mel L1 distance (see the module docstring)."""
    if len(windows) != len(n_mels):
        raise TokError(f"mel distance needs one band count per window, got {len(windows)} windows and {len(n_mels)} band counts")
    ref, rec = _pair(reference, reconstruction)
    if ref.shape[-1] <= max(windows) // 2:
        raise TokError(f"audio of {ref.shape[-1]} samples is too short for a {max(windows)}-sample STFT window")
    total = torch.zeros(ref.shape[0], dtype=torch.float64)
    for window, bands in zip(windows, n_mels):
        a = _log_mel(ref, sample_rate, window, bands, clamp_eps)
        b = _log_mel(rec, sample_rate, window, bands, clamp_eps)
        total += F.l1_loss(a, b, reduction="none").flatten(1).mean(1)
    return total


def mel_distance(reference, reconstruction, sample_rate: int, **opts) -> float:
    return float(mel_distance_per_item(reference, reconstruction, sample_rate, **opts).mean())
