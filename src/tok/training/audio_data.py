"""Audio datasets for codec training: decoded once (mono, model rate), random crops per sample."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..core import TokError
from ..core.media.audio import AUDIO_EXTENSIONS, read_audio

logger = logging.getLogger(__name__)


class AudioFolder(Dataset):
    """Every audio file under `root` (recursively) at `sample_rate`, as random `crop`-sample crops.

    As WavTokenizer's data module: files shorter than the crop are tiled, and each crop is
    peak-normalised to a random level in [min_db, max_db] dBFS (official: sox `norm` to -6..-1 dB;
    fixed -3 dB when `random_gain` is off). Silent crops are returned unscaled.
    `items_per_epoch` only sets how many crops make an epoch (crops are random anyway).
    """

    def __init__(
        self, root: str | os.PathLike, sample_rate: int, crop: int, *, random_gain: bool = True,
        min_db: float = -6.0, max_db: float = -1.0, items_per_epoch: int | None = None,
    ):
        root = Path(root)
        if not root.is_dir():
            raise TokError(f"{root}: training data folder does not exist")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise TokError(f"{root}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
        self.waves = [read_audio(p, sample_rate=sample_rate)[0][0] for p in files]
        self.crop, self.random_gain = crop, random_gain
        self.min_db, self.max_db = min_db, max_db
        self.items_per_epoch = items_per_epoch or len(self.waves)
        seconds = sum(w.numel() for w in self.waves) / sample_rate
        logger.info("audio dataset: %d files, %.1f s from %s", len(files), seconds, root)

    def __len__(self) -> int:
        return self.items_per_epoch

    def __getitem__(self, index: int) -> Tensor:
        wave = self.waves[random.randrange(len(self.waves))]
        if wave.numel() < self.crop:
            wave = wave.repeat(self.crop // wave.numel() + 1)
        start = random.randrange(wave.numel() - self.crop + 1)
        crop = wave[start : start + self.crop]
        level_db = random.uniform(self.min_db, self.max_db) if self.random_gain else -3.0
        peak = crop.abs().max()
        if peak > 1e-4:
            crop = crop * (10 ** (level_db / 20) / peak)
        return crop.contiguous()


def stack_waves(waves: list[Tensor]) -> Tensor:
    return torch.stack(waves)
