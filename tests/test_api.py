import shutil

import pytest
import torch

import tok
from tok.core import TokError


def test_list_models_and_load(tiny_flextok_weights):
    names = [card.name for card in tok.list_models()]
    assert "flextok-small" in names and "flextok-d18-d28-dfn" in names
    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    assert not model.training and all(not p.requires_grad for p in model.parameters())


def test_encode_file_and_decode_file(tmp_path, photo, tiny_flextok_weights):
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    path = tok.encode_file(src, model, num_tokens=3)
    assert path == tmp_path / "photo.tok"
    tokens = tok.Tokens.load(path)
    assert tokens.shapes == [(1, 3)] and tokens.model == "flextok-tiny" and tokens.weights_digest == model.weights_digest
    out = tok.decode_file(path, model=model, steps=1)
    assert out == tmp_path / "photo.png" and out.is_file()
    # The API encodes exactly what the model gives for the preprocessed image.
    image, _ = tok.core.media.read_image(src)
    assert torch.equal(model.encode(model.preprocess(image), num_tokens=3).streams[0], tokens.streams[0])


def test_decode_file_refuses_other_models(tmp_path, tiny_flextok_weights):
    layout = tok.TokenLayout("sequence", (64000,), (("n",),))
    tok.Tokens([torch.zeros(1, 2, dtype=torch.long)], layout, "flextok-small").save(tmp_path / "x.tok")
    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    with pytest.raises(TokError, match="x.tok were made by model 'flextok-small', not 'flextok-tiny'"):
        tok.decode_file(tmp_path / "x.tok", model=model)
    assert not (tmp_path / "x.png").exists()
