import pytest
import torch

from tok import api
from tok.codecs.xy_tokenizer import (
    XYTokenizer,
    load_weights,
    official_state_dict,
    preset,
    save_checkpoint,
)
from tok.core.errors import TokError
from tok.core.weights import WeightSource


def _loaded(path) -> XYTokenizer:
    model = XYTokenizer(preset("tiny"))
    load_weights(model, WeightSource("explicit", path))
    return model.eval()


def test_official_checkpoint_loads_strictly_without_kmeans(tiny_xy, tiny_xy_checkpoint):
    model = _loaded(tiny_xy_checkpoint)
    for a, b in zip(official_state_dict(model).values(), official_state_dict(tiny_xy).values()):
        assert torch.equal(a, b)
    books_before = model.quantizer.residual_vq.rvq.codebooks.clone()
    wav = torch.randn(1, 6400) * 0.2
    assert torch.equal(model.encode(wav).streams[0], tiny_xy.encode(wav).streams[0])
    # The k-means flag came from the checkpoint, so encoding did not re-initialise the codebooks.
    assert torch.equal(model.quantizer.residual_vq.rvq.codebooks, books_before)
    assert model.weights_digest


def test_plain_state_dict_and_folder_layouts(tmp_path, tiny_xy):
    torch.save(official_state_dict(tiny_xy), tmp_path / "xy_tokenizer.ckpt")
    model = _loaded(tmp_path)  # a folder holding xy_tokenizer.ckpt
    wav = torch.randn(1, 3000)
    assert torch.equal(model.encode(wav).streams[0], tiny_xy.encode(wav).streams[0])


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_xy):
    state = official_state_dict(tiny_xy)
    del state["quantizer.quantizers.3.embed_avg"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.ckpt")
    with pytest.raises(TokError, match=r"missing keys \(quantizer.quantizers.3.embed_avg\).*unexpected keys \(extra.weight\)"):
        _loaded(tmp_path / "bad.ckpt")
    state = official_state_dict(tiny_xy)
    state["vocos.head.out.weight"] = torch.zeros(3, 3)
    torch.save(state, tmp_path / "shape.ckpt")
    with pytest.raises(TokError, match="vocos.head.out.weight"):
        _loaded(tmp_path / "shape.ckpt")


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"generator": {"x": object()}}, tmp_path / "evil.ckpt")
    with pytest.raises(TokError, match="safe loading refuses"):
        _loaded(tmp_path / "evil.ckpt")


def test_fp16_safetensors_round_trip(tmp_path, tiny_xy):
    path = save_checkpoint(tiny_xy, tmp_path / "xy.safetensors")
    model = _loaded(path)
    assert model.quantizer.residual_vq.rvq.layers[0]._codebook.initted.item() is True
    torch.testing.assert_close(model.vocos.head.out.weight, tiny_xy.vocos.head.out.weight, atol=1e-3, rtol=1e-3)


def test_zoo_lists_xy_models():
    cards = {c.name: c for c in api.list_models()}
    assert {"xy-tokenizer-official", "xy-tokenizer-small", "xy-tokenizer-tiny"} <= set(cards)
    official = cards["xy-tokenizer-official"]
    assert official.hf_repo == "fdugyt/XY_Tokenizer" and official.modality == "audio"
    assert "8 codebooks x 1024 at 12.5 Hz" in official.tokens and "1000 bps" in official.tokens


def test_api_load_by_name(tiny_xy_checkpoint):
    model = api.load("xy-tokenizer-tiny", weights=tiny_xy_checkpoint, device="cpu")
    assert model.name == "xy-tokenizer-tiny" and not model.training
