"""Audio reading, conversion and writing: formats, channels, rates and every bad-input case."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from tok.core.errors import TokError
from tok.core.media import MEDIA_EXTENSIONS, list_media
from tok.core.media.audio import read_audio, resample, to_mono, write_audio


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * math.pi * freq * t).astype(np.float32)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)


@pytest.mark.parametrize("suffix,fmt,subtype", [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS"), (".mp3", "MP3", "MPEG_LAYER_III")])
def test_formats_read_as_float_mono(tmp_path, suffix, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile without {fmt}")
    path = tmp_path / f"tone{suffix}"
    sf.write(path, tone(16000), 16000, format=fmt, subtype=subtype)
    wave, info = read_audio(path)
    assert wave.dtype == torch.float32 and wave.shape[0] == 1
    assert info.sample_rate == 16000 and info.channels == 1
    # Lossy codecs add encoder delay; the tone's level must survive.
    assert abs(wave.abs().max().item() - 0.5) < 0.08
    if suffix in (".wav", ".flac"):
        assert wave.shape[1] == 8000 and info.num_samples == 8000


def test_stereo_and_six_channels_mix_down_to_the_mean(tmp_path):
    for channels in (2, 6):
        data = tone(24000, channels=channels)
        path = tmp_path / f"c{channels}.wav"
        sf.write(path, data, 24000, subtype="FLOAT")
        wave, info = read_audio(path)
        assert info.channels == channels and wave.shape == (1, data.shape[0])
        torch.testing.assert_close(wave[0], torch.from_numpy(data.mean(axis=1)), atol=1e-6, rtol=0)
        multi, _ = read_audio(path, mono=False)
        assert multi.shape == (channels, data.shape[0])
        torch.testing.assert_close(to_mono(multi), wave)


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
def test_any_rate_is_resampled_to_the_model_rate(tmp_path, rate):
    path = tmp_path / "r.wav"
    sf.write(path, tone(rate, seconds=1.0, freq=300.0), rate, subtype="FLOAT")
    wave, info = read_audio(path, sample_rate=24000)
    assert info.sample_rate == rate and wave.shape == (1, 24000)
    # Still a 300 Hz tone: compare with the analytic signal at 24 kHz away from the edges.
    t = torch.arange(24000) / 24000
    expected = 0.5 * torch.sin(2 * math.pi * 300.0 * t)
    assert (wave[0, 2000:-2000] - expected[2000:-2000]).abs().max() < 0.01


def test_resample_is_identity_at_the_same_rate():
    x = torch.randn(1, 100)
    assert resample(x, 16000, 16000) is x


def test_bad_inputs_raise_one_line_errors_naming_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    no_samples = tmp_path / "nosamples.wav"
    sf.write(no_samples, np.zeros((0, 1), np.float32), 16000)
    text = tmp_path / "text.wav"
    text.write_text("this is not audio at all, just text " * 20)
    nan = tmp_path / "nan.wav"
    data = tone(16000)
    data[100] = np.nan
    sf.write(nan, data, 16000, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    data = tone(16000)
    data[5] = np.inf
    sf.write(inf, data, 16000, subtype="FLOAT")
    good_flac = tmp_path / "good.flac"
    sf.write(good_flac, tone(16000, seconds=2.0), 16000)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(good_flac.read_bytes()[: good_flac.stat().st_size // 2])
    cases = {
        empty: "empty file",
        no_samples: "no samples",
        text: "not an audio file",
        nan: "NaN or infinite",
        inf: "NaN or infinite",
        truncated: "truncated",
        tmp_path / "missing.wav": "no such file",
        tmp_path: "is a folder",
    }
    for path, message in cases.items():
        with pytest.raises(TokError, match=message) as err:
            read_audio(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_wav_is_refused(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(16000), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(TokError, match="truncated"):
        read_audio(cut)


def test_silence_is_valid_audio(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((1600, 1), np.float32), 16000)
    wave, _ = read_audio(path)
    assert wave.abs().max() == 0


def test_write_audio_round_trip_clips_and_is_atomic(tmp_path):
    wave = torch.linspace(-1.5, 1.5, 4800)[None]
    out = write_audio(wave, tmp_path / "out.wav", 24000)
    back, info = read_audio(out)
    assert info.sample_rate == 24000 and back.shape == (1, 4800)
    assert back.max() <= 1.0 and back.min() >= -1.0
    torch.testing.assert_close(back[0, 2000:2800], wave[0, 2000:2800], atol=1 / 32767 + 1e-6, rtol=0)
    with pytest.raises(TokError, match="unsupported audio suffix"):
        write_audio(wave, tmp_path / "out.xyz", 24000)
    with pytest.raises(TokError, match="NaN"):
        write_audio(torch.full((1, 10), float("nan")), tmp_path / "bad.wav", 24000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]  # no partial files left


def test_audio_is_a_registered_modality(tmp_path):
    assert ".wav" in MEDIA_EXTENSIONS["audio"] and ".flac" in MEDIA_EXTENSIONS["audio"]
    sf.write(tmp_path / "b.flac", tone(16000), 16000)
    sf.write(tmp_path / "a.wav", tone(16000), 16000)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_media(tmp_path, "audio")] == ["a.wav", "b.flac"]
