"""Loading official-layout TokenFlow checkpoints (random weights made here)."""

import argparse

import pytest
import torch
from test_tokenflow_parity import CONFIGS

from tok.core import TokError
from tok.core.weights import WeightSource
from tok.tokenizers.tokenflow import TokenFlow, load_weights, read_checkpoint


@pytest.fixture(scope="module")
def official_b():
    torch.manual_seed(5)
    return TokenFlow(CONFIGS["b"]).state_dict()


class NotAllowed:
    """Any class outside torch's safe list: weights_only loading must refuse to build it."""


def fresh(variant="b"):
    model = TokenFlow(CONFIGS[variant])
    model.name = f"tokenflow-{variant}-test"
    return model


def same(model, state):
    return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_training_checkpoint_with_args_loads_strictly(tmp_path, official_b):
    path = tmp_path / "tokenflow_clipb_32k_enhanced.pt"
    torch.save({"model": official_b, "optimizer": {"state": {}}, "steps": 7, "args": argparse.Namespace(lr=1e-4)}, path)
    model = fresh()
    load_weights(model, WeightSource("explicit", path))
    assert same(model, official_b) and len(model.weights_digest) == 16
    # A folder holding the official file name works too (the Hugging Face snapshot layout).
    model = fresh()
    load_weights(model, WeightSource("hf-cache", tmp_path))
    assert same(model, official_b)


def test_ema_is_preferred_then_model_then_state_dict(tmp_path, official_b):
    other = {k: v + 1 if v.is_floating_point() else v for k, v in official_b.items()}
    torch.save({"ema": official_b, "model": other}, tmp_path / "a.pt")
    torch.save({"state_dict": official_b}, tmp_path / "b.pt")
    torch.save(dict(official_b), tmp_path / "c.pt")
    for name in ("a.pt", "b.pt", "c.pt"):
        assert torch.equal(read_checkpoint(tmp_path / name)["quantize.embedding_vqkd.weight"], official_b["quantize.embedding_vqkd.weight"])
    torch.save({"optimizer": {}}, tmp_path / "d.pt")
    with pytest.raises(TokError, match=r"d.pt: no 'ema', 'model' or 'state_dict' entry"):
        read_checkpoint(tmp_path / "d.pt")


def test_missing_unexpected_and_unsafe(tmp_path, official_b):
    broken = dict(official_b)
    del broken["decoder_vqkd.blocks.0.attn.q_bias"]
    broken["encoder_vqkd.proj"] = torch.zeros(64, 512)
    torch.save({"model": broken}, tmp_path / "broken.pt")
    with pytest.raises(TokError, match=r"broken.pt: weights do not fit the model: 1 missing keys \(decoder_vqkd.blocks.0.attn.q_bias\); 1 unexpected keys \(encoder_vqkd.proj\)"):
        load_weights(fresh(), WeightSource("explicit", tmp_path / "broken.pt"))
    torch.save({"model": official_b, "extra": NotAllowed()}, tmp_path / "unsafe.pt")
    with pytest.raises(TokError, match=r"unsafe.pt: cannot read weights \(UnpicklingError"):
        read_checkpoint(tmp_path / "unsafe.pt")


def test_the_other_variant_is_named(tmp_path, official_b):
    torch.save({"model": official_b}, tmp_path / "b_model.pt")
    with pytest.raises(TokError, match=r"b_model.pt: this is a TokenFlow-B \(CLIP ViT-B/16, tokenflow-b\) checkpoint; 'tokenflow-xl-test' needs a TokenFlow-XL"):
        load_weights(fresh("xl"), WeightSource("explicit", tmp_path / "b_model.pt"))
    torch.manual_seed(6)
    torch.save({"ema": TokenFlow(CONFIGS["xl"]).state_dict()}, tmp_path / "xl_model.pt")
    with pytest.raises(TokError, match=r"xl_model.pt: this is a TokenFlow-XL \(SigLIP, tokenflow-xl\) checkpoint; 'tokenflow-b-test' needs a TokenFlow-B"):
        load_weights(fresh("b"), WeightSource("explicit", tmp_path / "xl_model.pt"))
    with pytest.raises(TokError, match="nothing.pt: weights file does not exist"):
        read_checkpoint(tmp_path / "nothing.pt")
