"""Strict, safe loading of official Lightning checkpoints (random weights, official layout)."""

import pickle
from dataclasses import replace

import pytest
import torch
from omni_checkpoints import random_model, write_official_checkpoint

from tok import api
from tok.core import TokError
from tok.tokenizers.omnitokenizer import preset


def test_official_checkpoint_loads_strictly_and_reproduces_the_model(tiny_ckpt, tiny_model):
    loaded = api.load("omnitokenizer-tiny", tiny_ckpt, "cpu")
    x = torch.rand(1, 3, 9, 64, 64) - 0.5
    with torch.inference_mode():
        assert torch.equal(loaded.encode(x).streams[0], tiny_model.encode(x).streams[0])
    assert loaded.weights_digest and loaded.name == "omnitokenizer-tiny"


def test_lightning_extras_with_numpy_scalars_and_hparams_under_args(tmp_path, tiny_model):
    import numpy as np

    path = write_official_checkpoint(tiny_model, tmp_path / "pl.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["hyper_parameters"] = {"args": checkpoint["hyper_parameters"]}  # save_hyperparameters(args)
    checkpoint["callbacks"] = {"ModelCheckpoint": {"best_model_score": np.float64(0.25), "epochs": np.int64(3)}}
    torch.save(checkpoint, path)
    assert api.load("omnitokenizer-tiny", path, "cpu").weights_digest


def test_folder_with_the_checkpoint_file(tmp_path, tiny_model):
    write_official_checkpoint(tiny_model, tmp_path / "weights.ckpt")
    assert api.load("omnitokenizer-tiny", tmp_path, "cpu").weights_digest


def test_unexpected_and_missing_keys_are_named(tmp_path, tiny_model):
    extra = write_official_checkpoint(tiny_model, tmp_path / "extra.ckpt", extra={"encoder.surprise.weight": torch.zeros(3)})
    with pytest.raises(TokError, match=r"1 unexpected keys \(encoder.surprise.weight\)"):
        api.load("omnitokenizer-tiny", extra, "cpu")
    checkpoint = torch.load(extra, weights_only=False)
    del checkpoint["state_dict"]["encoder.surprise.weight"], checkpoint["state_dict"]["decoder.to_pixels.0.bias"]
    torch.save(checkpoint, tmp_path / "missing.ckpt")
    with pytest.raises(TokError, match=r"1 missing keys \(decoder.to_pixels.0.bias\)"):
        api.load("omnitokenizer-tiny", tmp_path / "missing.ckpt", "cpu")


def test_hyper_parameters_under_either_spelling_must_match_the_preset(tmp_path, tiny_model):
    path = write_official_checkpoint(tiny_model, tmp_path / "tp2.ckpt", temporal_patch_size=2)
    with pytest.raises(TokError, match="trained with temporal_patch_size=2, but this preset has temporal_patch_size=4"):
        api.load("omnitokenizer-tiny", path, "cpu")
    path = write_official_checkpoint(tiny_model, tmp_path / "acausal.ckpt", casual_in_peg=False)
    with pytest.raises(TokError, match="causal_in_peg=False"):
        api.load("omnitokenizer-tiny", path, "cpu")
    path = write_official_checkpoint(tiny_model, tmp_path / "fixed.ckpt", causal_in_peg=True)  # the corrected spelling
    assert api.load("omnitokenizer-tiny", path, "cpu")


class Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_unsafe_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Payload()}, path)
    with pytest.raises(TokError, match="evil.ckpt: refused to load"):
        api.load("omnitokenizer-tiny", path, "cpu")
    path.write_bytes(pickle.dumps([1, 2]) [:5])
    with pytest.raises(TokError, match="evil.ckpt"):
        api.load("omnitokenizer-tiny", path, "cpu")


def test_vae_checkpoint_loads_with_its_codebook(tmp_path):
    vae = random_model(replace(preset("tiny"), use_vae=True))
    path = write_official_checkpoint(vae, tmp_path / "vae.ckpt")
    with pytest.raises(TokError, match="use_vae=True, but this preset has use_vae=False"):
        api.load("omnitokenizer-tiny", path, "cpu")
