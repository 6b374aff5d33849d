"""The bundled wavtokenizer-small: size budget, offline loading by alias, and tokens that carry the speech."""

from pathlib import Path

import pytest

import tok
from tok.core.weights import BUNDLED_DIR
from tok.training.audio_losses import MelReconstructionLoss

SPEECH = Path(__file__).parents[1] / "data" / "speech.flac"


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """Official checkpoints a developer may have cached must not change what 'wavtokenizer' resolves to."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


def test_bundled_file_is_within_budget():
    size = (BUNDLED_DIR / "wavtokenizer-small.safetensors").stat().st_size
    assert size <= 3_500_000


def test_alias_resolves_to_the_bundled_model_and_tokens_carry_the_speech():
    model = tok.load("wavtokenizer", device="cpu")
    assert model.name == "wavtokenizer-small" and model.weights_digest
    item, source = model.read_media(SPEECH)
    tokens = model.encode_items([item], [source])
    assert tokens.shapes == [(1, 1, -(-item.numel() // 320))]
    ids = tokens.streams[0][0, 0]
    assert ids.unique().numel() > 50  # the codebook did not collapse
    mel = MelReconstructionLoss(24000)
    decoded = model.decode(tokens)[0, : item.numel()]
    own = mel(decoded[None], item[None]).item()
    # The same tokens in reverse order decode to the right sounds at the wrong times.
    shuffled = tokens.streams[0].flip(-1)
    wrong = mel(model.decode_id_list([shuffled[0, 0]])[0][None, : item.numel()], item[None]).item()
    assert own < wrong
