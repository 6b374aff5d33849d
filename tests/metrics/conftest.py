"""Fixtures for the metric tests: synthetic speech-like audio and random-weight network files."""

import math

import pytest
import torch


def speech_like(seconds: float = 3.0, rate: int = 16000, seed: int = 0) -> torch.Tensor:
    """Voiced bursts (harmonics of a gliding pitch, syllable-rate envelope) with pauses: enough
    like speech for PESQ's utterance detection and STOI's silent-frame removal."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 12))
    envelope = torch.clamp(torch.sin(2 * math.pi * 1.0 * t), min=0) ** 2
    noise = 0.01 * torch.randn(t.shape, generator=g, dtype=torch.float64)
    return (0.3 * voiced * envelope + noise).float()


@pytest.fixture
def speech():
    return speech_like


def _write_images(folder, images):
    """(B, 3, H, W) float in [0, 1] -> PNGs 000.png, 001.png, ... in `folder`."""
    from tok.core.media import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_image(image, folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def write_images():
    return _write_images
