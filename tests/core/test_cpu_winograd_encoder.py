"""The opt-in `cpu_winograd_encoder` switch: the convolutional encoders (FlexTok's VAE encoder,
TokenFlow's pixel encoder) run Winograd F(4x4, 3x3) in CPU inference, the ids stay those of the
direct convolution, switching off restores the direct path exactly, and the state dict does not
change. (The tiny models' maps are small, so `min_tiles` is lowered here.)"""

from pathlib import Path

import pytest
import torch
from random_models import random_inputs, random_model

import tok
import tok.nn.winograd as winograd
from tok.core.errors import TokError
from tok.core.tokenizer import Tokenizer
from tok.metrics.image import psnr

DATA = Path(__file__).parents[1] / "data"
ENCODERS = {"flextok-tiny": "vae.vae.encoder", "tokenflow-tiny": "encoder"}


@pytest.fixture
def calls(monkeypatch):
    """The input layouts of every Winograd convolution run."""
    seen = []
    real = winograd.winograd_conv3x3
    monkeypatch.setattr(winograd, "winograd_conv3x3", lambda x, *a: seen.append(x.is_contiguous(memory_format=torch.channels_last)) or real(x, *a))
    monkeypatch.setattr(winograd.WinogradConv2d, "min_tiles", 1)
    return seen


@pytest.mark.parametrize("name", ENCODERS)
def test_cpu_winograd_encoder_switches_the_encoder_and_back(name, calls):
    model = random_model(name)
    encoder = model.get_submodule(ENCODERS[name])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = random_inputs(name, model, batch=2)
    with torch.inference_mode():
        direct, features = model.encode(x), encoder(x)
        assert not calls  # by default the encoder runs the direct convolution
        model.cpu_winograd_encoder = True
        assert model.cpu_winograd_encoder
        assert any(type(m) is winograd.WinogradConv2d for m in encoder.modules())
        fast, fast_features = model.encode(x), encoder(x)
        assert calls and all(calls), "the encoder's Winograd layers did not all read NHWC"
        model.cpu_winograd_encoder = False
        assert torch.equal(encoder(x), features)  # switching off restores the direct convolution
    assert not any(type(m) is winograd.WinogradConv2d for m in encoder.modules())
    assert model.state_dict().keys() == state.keys() and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # Float rounding only: the features move by about 1e-6 of their size, the ids not at all here.
    scale = features.abs().max()
    assert 0 < (fast_features - features).abs().max() < 1e-4 * scale
    assert all(torch.equal(a, b) for a, b in zip(fast.streams, direct.streams))
    assert fast.encoder_options == {"cpu_winograd_encoder": True} and direct.encoder_options == {}


def test_a_model_without_a_convolutional_encoder_refuses():
    class Plain(Tokenizer):
        modality = "image"

    plain = Plain(None)
    plain.cpu_winograd_encoder = False
    with pytest.raises(TokError, match="plain has no encoder with 3x3 convolutions for Winograd"):
        plain.cpu_winograd_encoder = True
    with pytest.raises(TokError, match="omnitokenizer has no encoder with 3x3 convolutions"):
        random_model("omnitokenizer-tiny").cpu_winograd_encoder = True


def test_bundled_flextok_keeps_its_ids_and_psnr_with_the_winograd_encoder():
    """flextok-small on a held-out photo: the latents move by float rounding, the 64 ids do not
    (README: all 1 984 ids of the 31 val photos equal)."""
    model = tok.load("flextok-small", device="cpu")
    item, source = model.read_media(DATA / "photo.jpg")
    image = model.preprocess(item)
    with torch.inference_mode():
        latents, tokens = model.vae.encode(image), model.encode_items([item], [source])
        model.cpu_winograd_encoder = True
        fast_latents, fast_tokens = model.vae.encode(image), model.encode_items([item], [source])
        assert 0 < (fast_latents - latents).abs().max() < 1e-4 * latents.abs().max()
        assert torch.equal(fast_tokens.streams[0], tokens.streams[0])
        reference = model.postprocess(image)
        before = psnr(reference, model.postprocess(model.decode(tokens, steps=1)))
        after = psnr(reference, model.postprocess(model.decode(fast_tokens, steps=1)))
    assert after == before
