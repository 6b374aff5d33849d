"""Parity with the official WavTokenizer modules (recorded by tests/data/make_wavtokenizer_parity.py)."""

from pathlib import Path

import torch
from safetensors.torch import load_file

from tok.codecs.wavtokenizer import WavTokenizer, from_official, preset
from tok.core.weights import load_strict

DATA = Path(__file__).parents[1] / "data" / "wavtokenizer_parity.safetensors"


def load_reference():
    tensors = load_file(str(DATA))
    state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
    model = WavTokenizer(preset("tiny")).eval()
    load_strict(model, from_official(state), DATA)
    return model, tensors


def test_codes_features_and_waveform_match_the_official_modules():
    model, ref = load_reference()
    with torch.inference_mode():
        latents = model.encode_latents(ref["audio"])
        out = model.quantize(latents)
        ids = out.ids
        features = model.ids_to_features(ids)
        decoded = model.decode_features(features)
    assert torch.equal(ids, ref["codes"][0])
    torch.testing.assert_close(features, ref["features"], atol=1e-6, rtol=0)
    assert decoded.shape == ref["decoded"].shape == (2, 94 * 32)
    torch.testing.assert_close(decoded, ref["decoded"], atol=1e-4, rtol=1e-4)


def test_public_encode_decode_match_the_official_pipeline():
    model, ref = load_reference()
    tokens = model.encode(ref["audio"])
    assert tokens.shapes == [(2, 1, 94)]
    assert torch.equal(tokens.streams[0][:, 0], ref["codes"][0])
    torch.testing.assert_close(model.decode(tokens), ref["decoded"], atol=1e-4, rtol=1e-4)
