"""Scoring speech with UTMOS: weights resolution, resampling, batching with a padding mask.

Conventions: mono waveforms in [-1, 1] with their sample rate; other rates are resampled to
16 kHz with torchaudio's default sinc resampler (as SpeechMOS does); no loudness normalisation.
Each utterance gets its own score (batched with a padding mask, so batching never changes a
score); the corpus figure is the arithmetic mean, as codec papers report it.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ...core.errors import TokError
from ..audio import resample
from ..checks import check_finite
from ..weights import UTMOS22_STRONG, resolve
from .model import SAMPLE_RATE, UTMOS22Strong, load_utmos


class UTMOS:
    """`UTMOS(weights=None)(waves, sample_rate)` -> (B,) scores; `waves` a (B, L) tensor or a list of 1-D clips."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device | None = None, batch_size: int = 16, model: UTMOS22Strong | None = None):
        if model is None:
            model = load_utmos(resolve(UTMOS22_STRONG, weights))
        device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.eval().requires_grad_(False).to(device)
        self.device, self.batch_size = device, batch_size

    @torch.inference_mode()
    def __call__(self, waves: Tensor | list[Tensor], sample_rate: int) -> Tensor:
        clips = _clips(waves)
        clips = [resample(c.double(), sample_rate, SAMPLE_RATE).float() for c in clips]
        scores = []
        # Similar lengths together, so little of each batch is padding.
        order = sorted(range(len(clips)), key=lambda i: clips[i].numel())
        for start in range(0, len(order), self.batch_size):
            chunk = [clips[i] for i in order[start : start + self.batch_size]]
            lengths = torch.tensor([c.numel() for c in chunk])
            batch = torch.zeros(len(chunk), int(lengths.max()))
            for row, clip in enumerate(chunk):
                batch[row, : clip.numel()] = clip
            scores.append(self.model(batch.to(self.device), lengths.to(self.device)).double().cpu())
        result = torch.empty(len(clips), dtype=torch.float64)
        result[torch.tensor(order)] = torch.cat(scores)
        return result


def _clips(waves: Tensor | list[Tensor]) -> list[Tensor]:
    if isinstance(waves, Tensor):
        if waves.ndim == 1:
            waves = waves[None]
        elif waves.ndim == 3 and waves.shape[1] == 1:
            waves = waves[:, 0]
        if waves.ndim != 2:
            raise TokError(f"UTMOS expects mono waveforms (B, L), got shape {tuple(waves.shape)}")
        waves = list(waves)
    if not waves:
        raise TokError("UTMOS got no audio")
    clips = []
    for i, clip in enumerate(waves):
        clip = torch.as_tensor(clip).reshape(-1)
        if clip.numel() == 0:
            raise TokError(f"UTMOS: item {i} is empty audio (0 samples)")
        check_finite(clip.double(), f"UTMOS item {i}")
        if float(clip.abs().max()) == 0:
            raise TokError(f"UTMOS: item {i} is silent (all zeros)")
        clips.append(clip)
    return clips


_SCORERS: dict[tuple[str, str], UTMOS] = {}


def utmos(waves: Tensor | list[Tensor], sample_rate: int, weights: str | os.PathLike | None = None) -> float:
    """Mean UTMOS over the clips (the network is built once per weights file per process)."""
    key = (str(weights), "")
    if key not in _SCORERS:
        _SCORERS[key] = UTMOS(weights)
    return float(_SCORERS[key](waves, sample_rate).mean())
