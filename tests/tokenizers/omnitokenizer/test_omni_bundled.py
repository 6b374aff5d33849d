"""The bundled omnitokenizer-small: size budget, offline loading, images and clips through one model."""

import random

import pytest
import torch

import tok
from tok.core.media import read_image
from tok.core.weights import BUNDLED_DIR
from tok.training.omnitokenizer import camera_motion

MB = 1_000_000


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """Official checkpoints a developer may have cached must not change what the alias resolves to."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def small():
    return tok.load("omnitokenizer", device="cpu")


def test_bundle_budget_and_alias(small):
    assert (BUNDLED_DIR / "omnitokenizer-small.safetensors").stat().st_size <= 3.5 * MB
    assert small.name == "omnitokenizer-small" and small.weights_digest and not small.codebook.need_init


def test_photo_and_clip_reconstruct(small, photo):
    image, _ = read_image(photo)
    x = small.preprocess(image)
    with torch.inference_mode():
        tokens = small.encode(x)
        y = small.decode(tokens).clamp(-0.5, 0.5)
    assert tokens.streams[0].shape == (1, 1, 16, 16)
    image_psnr = psnr(x, y)
    # Under-trained on CPU (see README for held-out figures), but far better than a flat grey guess.
    assert image_psnr > psnr(x, torch.full_like(x, float(x.mean()))) + 3
    clip = camera_motion((image * 255).round().to(torch.uint8), 17, 128, random.Random(0)) - 0.5
    with torch.inference_mode():
        clip_tokens = small.encode(clip[None])
        clip_recon = small.decode(clip_tokens)[:, :, :17].clamp(-0.5, 0.5)
    assert clip_tokens.streams[0].shape == (1, 3 + 3, 16, 16)  # 9 + 8 (padded to 9) frames
    assert psnr(clip[None], clip_recon) > psnr(clip[None], torch.full_like(clip[None], float(clip.mean()))) + 2
