"""Read, validate, convert and write audio.

`read_audio` returns float32 mono audio as a (1, L) tensor at the requested sample rate, whatever
the file holds. Conversions (documented, never silent errors):

* **Channels**: every multi-channel file (stereo, 5.1, ...) is mixed down to mono as the plain
  mean of all channels, the rule EnCodec's `convert_audio` and WavTokenizer's inference use.
* **Sample rate**: any rate (8 kHz, 44.1 kHz, 96 kHz, ...) is resampled to the model's rate
  with torchaudio's band-limited sinc resampler (`torchaudio.functional.resample`).
* **Level**: integer PCM is scaled to [-1, 1]; float files keep their values (peaks above 1 are
  allowed, they are not clipped on input).

Formats: whatever libsndfile decodes (WAV, FLAC, OGG Vorbis/Opus, MP3 with libsndfile >= 1.1,
AIFF); other containers (m4a, aac, ...) go through `ffmpeg` when it is installed.

Every failure is a `TokError` naming the file and the problem: missing, empty (0 bytes or 0
samples), not audio, corrupt/truncated, NaN or infinite samples. Silence is valid audio.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import TokError
from ..io import atomic_path
from .listing import list_files

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac")
# Suffixes libsndfile cannot open; read with ffmpeg when it is on PATH.
FFMPEG_ONLY = (".m4a", ".aac")
WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
# Refuse absurd rates early: they are almost always a broken header, and resampling them is costly.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000


@dataclass(frozen=True)
class AudioInfo:
    """What the source file was, recorded in .tok headers (`num_samples` at the file's own rate)."""

    path: str
    sample_rate: int
    num_samples: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def to_dict(self) -> dict:
        return {
            "media": "audio", "path": self.path, "source_sample_rate": self.sample_rate,
            "source_num_samples": self.num_samples, "channels": self.channels, "format": self.format,
        }


def _wav_shortfall(path: Path) -> int:
    """Bytes missing from a RIFF/WAVE file's `data` chunk (0 when complete or not a plain WAV).

    libsndfile silently shortens a WAV whose data chunk was cut off, so the header is checked here.
    Streaming writers leave the size at 0 or 0xFFFFFFFF; those are not counted as truncated.
    """
    import struct

    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return 0
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                if size in (0, 0xFFFFFFFF):
                    return 0
                available = path.stat().st_size - f.tell()
                return max(0, size - available)
            f.seek(size + (size & 1), 1)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int, str]:
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            fmt = f.format
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
            expected = f.frames
    except sf.LibsndfileError as e:
        message = str(e)
        if "Format not recognised" in message or "unknown format" in message.lower():
            raise TokError(f"{path}: not an audio file, or a format libsndfile cannot read") from None
        raise TokError(f"{path}: corrupt or truncated audio ({message})") from None
    except (RuntimeError, ValueError, OSError) as e:
        raise TokError(f"{path}: corrupt or truncated audio ({e})") from None
    missing = _wav_shortfall(path)
    if missing:
        raise TokError(f"{path}: truncated WAV file ({missing} bytes of audio data missing)")
    if expected > 0 and data.shape[0] < expected:
        # The header promised more samples than the file holds: a truncated download or copy.
        raise TokError(f"{path}: truncated audio (header says {expected} samples, file holds {data.shape[0]})")
    return data, rate, fmt


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int, str]:
    """Decode with ffmpeg to 32-bit float WAV on a pipe (native rate and channel count)."""
    import io

    import soundfile as sf

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise TokError(f"{path}: {path.suffix} files need ffmpeg, which is not installed")
    cmd = [exe, "-v", "error", "-nostdin", "-i", str(path), "-f", "wav", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise TokError(f"{path}: not audio, or corrupt ({reason[-1] if reason else 'ffmpeg failed'})")
    data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    return data, rate, path.suffix.lstrip(".").upper()


def to_mono(wave: Tensor) -> Tensor:
    """(C, L) -> (1, L): the plain mean of all channels (stereo, 5.1, ...)."""
    return wave.mean(dim=0, keepdim=True) if wave.shape[0] > 1 else wave


def resample(wave: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Resample (..., L) from `orig_rate` to `new_rate` (band-limited sinc, torchaudio defaults)."""
    if orig_rate == new_rate:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, int(orig_rate), int(new_rate))


def read_audio(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True) -> tuple[Tensor, AudioInfo]:
    """Read an audio file as float32 (C, L) (C = 1 when `mono`), resampled to `sample_rate` if given."""
    path = Path(path)
    if not path.exists():
        raise TokError(f"{path}: no such file")
    if path.is_dir():
        raise TokError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise TokError(f"{path}: empty file (0 bytes)")
    reader = _read_ffmpeg if path.suffix.lower() in FFMPEG_ONLY else _read_soundfile
    data, rate, fmt = reader(path)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise TokError(f"{path}: audio holds no samples")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise TokError(f"{path}: implausible sample rate {rate} Hz")
    if not np.isfinite(data).all():
        raise TokError(f"{path}: audio contains NaN or infinite samples")
    info = AudioInfo(str(path), int(rate), int(data.shape[0]), int(data.shape[1]), fmt)
    wave = torch.from_numpy(np.ascontiguousarray(data.T))  # (C, L)
    if mono:
        wave = to_mono(wave)
    if sample_rate is not None:
        wave = resample(wave, rate, sample_rate)
    return wave.contiguous(), info


def write_audio(wave: Tensor, path: str | os.PathLike, sample_rate: int) -> Path:
    """Write (L,) or (C, L) float audio atomically; format from the suffix (.wav/.flac 16-bit PCM, .ogg).

    Samples are clipped to [-1, 1] (integer PCM cannot hold more); NaN/inf are refused.
    """
    import soundfile as sf

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise TokError(f"{path}: unsupported audio suffix {path.suffix!r}; use one of {', '.join(WRITE_FORMATS)}")
    wave = wave.detach().float().cpu()
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise ValueError(f"expected audio (L,) or (C, L), got {tuple(wave.shape)}")
    if not torch.isfinite(wave).all():
        raise TokError(f"{path}: refusing to write audio with NaN or infinite samples")
    fmt, subtype = WRITE_FORMATS[suffix]
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wave.clamp(-1, 1).T.numpy(), int(sample_rate), format=fmt, subtype=subtype)
    return path


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Supported audio files directly in `folder`, sorted; a TokError when there are none."""
    return list_files(folder, AUDIO_EXTENSIONS, "audio files")


def read_model_audio(path: str | os.PathLike, model_rate: int) -> tuple[Tensor, dict]:
    """One file as a codec's input: a mono waveform (T,) at `model_rate` and its source description
    (the file's own rate and length, plus `sample_rate` and `num_samples` at the model's rate)."""
    wave, info = read_audio(path, sample_rate=model_rate)
    source = info.to_dict()
    source.update(sample_rate=model_rate, num_samples=int(wave.shape[-1]))
    return wave[0], source


def write_model_audio(wave: Tensor, path: str | os.PathLike, model_rate: int, source: dict | None = None) -> Path:
    """Write a codec's decoded waveform back as the source was: trimmed to its length at the model's
    rate, then resampled to the source's own rate and padded or cut to its sample count there."""
    source = source or {}
    wave = wave.reshape(-1)
    if "num_samples" in source:
        wave = wave[: int(source["num_samples"])]
    rate = int(source.get("source_sample_rate", model_rate))
    if rate != model_rate:
        wave = resample(wave, model_rate, rate)
        if "source_num_samples" in source:
            n = int(source["source_num_samples"])
            wave = torch.nn.functional.pad(wave, (0, max(0, n - wave.shape[-1])))[:n]
    return write_audio(wave, path, rate)
