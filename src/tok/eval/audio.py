"""Audio metrics over two folders of clips paired by file name (until audio codecs run in `tok eval`).

Each reconstruction is read as mono (channels averaged), resampled to its reference's rate if
needed, and trimmed to the shorter of the two when they differ by at most 5% (codecs pad to
whole frames); a larger difference is an error naming the file. Metrics: pesq (wide-band),
stoi, estoi, mel (DAC multi-scale), sisdr, utmos (of the reconstructions; `utmos_ref` of the
references). Each value is the mean over clips.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.errors import TokError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
AUDIO_METRICS = ("pesq", "stoi", "estoi", "mel", "sisdr", "utmos", "utmos_ref")
MAX_LENGTH_MISMATCH = 0.05


def read_audio(path: Path) -> tuple[Tensor, int]:
    """A mono float clip (L,) in [-1, 1] and its sample rate."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise TokError(f"{path}: cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise TokError(f"{path}: empty audio (0 samples)")
    return torch.from_numpy(np.ascontiguousarray(data.mean(axis=1))), int(rate)


def pairs(reference: Path, reconstruction: Path) -> list[tuple[Path, Path]]:
    refs = sorted(p for p in Path(reference).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS) if Path(reference).is_dir() else []
    if not refs:
        raise TokError(f"{reference}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
    out = []
    for ref in refs:
        matches = [reconstruction / ref.name] + [reconstruction / (ref.stem + ext) for ext in AUDIO_EXTENSIONS]
        rec = next((m for m in matches if m.is_file()), None)
        if rec is None:
            raise TokError(f"{reconstruction}: no reconstruction of {ref.name}")
        out.append((ref, rec))
    return out


def aligned(ref_path: Path, rec_path: Path) -> tuple[Tensor, Tensor, int]:
    from ..metrics.audio import resample

    ref, rate = read_audio(ref_path)
    rec, rec_rate = read_audio(rec_path)
    rec = resample(rec.double(), rec_rate, rate).float()
    if abs(ref.numel() - rec.numel()) > MAX_LENGTH_MISMATCH * ref.numel():
        raise TokError(f"{rec_path}: {rec.numel()} samples against {ref.numel()} in {ref_path.name} (more than 5% apart)")
    n = min(ref.numel(), rec.numel())
    return ref[:n], rec[:n], rate


def evaluate_audio(reference: str | os.PathLike, reconstruction: str | os.PathLike, metrics: list[str], utmos_weights=None) -> dict[str, Any]:
    from ..metrics import audio as A

    unknown = [m for m in metrics if m not in AUDIO_METRICS]
    if unknown:
        raise TokError(f"unknown audio metric(s) {', '.join(unknown)}; choose from {', '.join(AUDIO_METRICS)}")
    items = [aligned(r, c) for r, c in pairs(Path(reference), Path(reconstruction))]
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for ref, rec, rate in items:
        if "pesq" in values:
            values["pesq"].append(A.pesq(ref, rec, rate))
        if "stoi" in values:
            values["stoi"].append(A.stoi(ref, rec, rate))
        if "estoi" in values:
            values["estoi"].append(A.stoi(ref, rec, rate, extended=True))
        if "mel" in values:
            values["mel"].append(A.mel_distance(ref, rec, rate))
        if "sisdr" in values:
            values["sisdr"].append(A.si_sdr(ref, rec))
    if "utmos" in values or "utmos_ref" in values:
        from ..metrics.utmos import UTMOS

        scorer = UTMOS(utmos_weights)
        for key, pick in (("utmos", 1), ("utmos_ref", 0)):
            if key in values:
                by_rate: dict[int, list[Tensor]] = {}
                for item in items:
                    by_rate.setdefault(item[2], []).append(item[pick])
                values[key] = [float(s) for rate, clips in by_rate.items() for s in scorer(clips, rate)]
    settings = {
        "pesq": {"mode": "wb", "rate": "16 kHz (resampled)"},
        "stoi": {"extended": False},
        "estoi": {"extended": True},
        "mel": {"windows": "32..2048", "n_mels": "5..320", "log": "log10, clamp 1e-5", "reduction": "L1 mean per scale, summed"},
        "sisdr": {"unit": "dB", "zero_mean": True},
        "utmos": {"model": "UTMOS22 strong", "rate": "16 kHz", "of": "reconstructions"},
        "utmos_ref": {"model": "UTMOS22 strong", "rate": "16 kHz", "of": "references"},
    }
    return {
        "reference": str(reference),
        "reconstruction": str(reconstruction),
        "count": len(items),
        "metrics": {m: {"value": float(np.mean(v)), "count": len(v), "settings": settings[m]} for m, v in values.items()},
    }
