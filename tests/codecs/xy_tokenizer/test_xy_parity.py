"""Parity with the official XY-Tokenizer code on tiny random weights (outputs recorded by
tests/data/make_xy_tokenizer_parity.py: log-mel, codes of a padded batch, decoded audio)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tok.codecs.xy_tokenizer import XYTokenizer, preset
from tok.codecs.xy_tokenizer.weights import load_state

DATA = Path(__file__).parents[2] / "data" / "xy_tokenizer_parity.safetensors"


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(DATA))


@pytest.fixture(scope="module")
def model(reference) -> XYTokenizer:
    # The tiny preset at the official 30-s position tables (the official extractor pads to 30 s).
    model = XYTokenizer(preset("tiny", max_seconds=30))
    state = {k.removeprefix("weights."): v for k, v in reference.items() if k.startswith("weights.")}
    load_state(model, state, DATA)
    return model.eval()


def test_log_mel_matches_official(model, reference):
    wav, lengths = reference["wav"], reference["lengths"]
    mel, frames = model.mel(wav, lengths)
    assert frames.tolist() == reference["mel_lengths"].tolist() == [321, 207]
    for i, t in enumerate(frames.tolist()):
        # Every frame the encoder reads for an item's valid outputs: 0 .. t (one past its end).
        torch.testing.assert_close(mel[i, :, : t + 1], reference["mel"][i, :, : t + 1], atol=2e-5, rtol=1e-5)


def test_codes_match_official_on_a_padded_batch(model, reference):
    wav, lengths = reference["wav"], reference["lengths"]
    tokens = model.encode(wav, lengths=lengths, pad_tail=False)
    ours = tokens.streams[0]
    official = reference["codes"]
    for i, n in enumerate(lengths.tolist()):
        t = n // 1280  # the official `encode` keeps floor(L / 1280) codes
        assert tokens.sources[i]["num_frames"] == t
        assert torch.equal(ours[i, :, :t], official[i, :, :t])


def test_quantized_latents_match_official(model, reference):
    wav, lengths = reference["wav"], reference["lengths"]
    with torch.inference_mode():
        z, code_lengths = model.encode_latents(wav, lengths)
        z_q, _, _ = model.quantizer(z, code_lengths)
    for i, t in enumerate(code_lengths.tolist()):
        torch.testing.assert_close(z_q[i, :, :t], reference["zq"][i, :, :t], atol=1e-4, rtol=1e-4)


def test_decoded_audio_matches_official(model, reference):
    for i in range(2):
        expected = reference[f"audio{i}"]
        t = expected.numel() // 1280
        codes = reference["codes"][i : i + 1, :, :t]
        with torch.inference_mode():
            audio = model.decode_latents(model.quantizer.decode_ids(codes), torch.tensor([t]))[0]
        assert audio.shape == expected.shape
        torch.testing.assert_close(audio, expected, atol=1e-4, rtol=1e-3)
