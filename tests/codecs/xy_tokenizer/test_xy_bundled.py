"""The bundled xy-tokenizer-small: size budget, offline loading by alias, and speech it keeps intelligible."""

from pathlib import Path

import pytest
import torch

import tok
from tok.core.media.audio import read_audio
from tok.core.weights import BUNDLED_DIR

SPEECH = Path(__file__).parents[2] / "data" / "speech.flac"  # a held-out clip of the training corpus


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def small():
    return tok.load("xy-tokenizer", device="cpu")  # the official weights are absent: the bundled model


def _log_mel(wave: torch.Tensor) -> torch.Tensor:
    import torchaudio

    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=256, n_mels=80, power=1)
    return mel(wave).clamp(min=1e-5).log()


def test_budget_and_alias(small):
    assert (BUNDLED_DIR / "xy-tokenizer-small.safetensors").stat().st_size <= 3_500_000
    assert small.name == "xy-tokenizer-small" and small.weights_digest


def test_reconstructs_held_out_speech(small):
    wave, _ = read_audio(SPEECH, 16000)
    tokens = small.encode(wave)
    assert tokens.streams[0].shape == (1, 8, -(-wave.shape[1] // 1280))
    decoded = small.decode(tokens)
    assert decoded.shape == wave.shape
    distance = (_log_mel(decoded) - _log_mel(wave)).abs().mean()
    silence = (_log_mel(torch.zeros_like(wave)) - _log_mel(wave)).abs().mean()
    assert distance < 0.85 and silence > 5  # measured 0.69; silence is 10.8
    stoi = pytest.importorskip("pystoi").stoi
    assert stoi(wave[0].double().numpy(), decoded[0].double().numpy(), 16000) > 0.6  # measured 0.66
