"""Our GPT with LlamaGen's RoPE convention reproduces the official c2i model's logits
(reference recorded by tests/data/make_llamagen_parity.py from the official code)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tok.core import TokenLayout, TokError
from tok.core.weights import load_strict
from tok.generators.gpt import GPT, GPTConfig, llamagen_key
from tok.generators.patterns import build_pattern

DATA = Path(__file__).parents[1] / "data" / "llamagen_parity.safetensors"


def official():
    tensors = load_file(str(DATA))
    state = {llamagen_key(k.removeprefix("model.")): v for k, v in tensors.items() if k.startswith("model.")}
    return state, tensors


def build(llamagen_rope: bool) -> GPT:
    config = GPTConfig(dim=64, depth=2, num_heads=2, num_classes=10, class_dropout=0.1, llamagen_rope=llamagen_rope)
    return GPT(config, build_pattern(TokenLayout("grid", (100,), (("h", "w"),)), [(4, 4)])).eval()


def test_logits_match_official_llamagen():
    state, tensors = official()
    model = build(llamagen_rope=True)
    load_strict(model, state, DATA)
    ids, labels = tensors["ids"], tensors["labels"]
    seq = ids[..., None]  # (B, 16, 1), raster order of the 4x4 grid
    with torch.no_grad():
        logits = model(model.pattern.inputs(seq), labels)[:, :, 0]
    assert logits.shape == tensors["logits"].shape
    assert (logits - tensors["logits"]).abs().max() < 1e-5
    # Our default RoPE convention is a different model: same weights, other logits.
    other = build(llamagen_rope=False)
    load_strict(other, state, DATA)
    with torch.no_grad():
        assert (other(other.pattern.inputs(seq), labels)[:, :, 0] - tensors["logits"]).abs().max() > 1e-3


def test_official_keys_load_strictly():
    state, _ = official()
    model = build(llamagen_rope=True)
    del state["norm.weight"]
    with pytest.raises(TokError, match="1 missing keys \\(norm.weight\\)"):
        load_strict(model, state, DATA)


def test_llamagen_convention_samples_the_same_with_and_without_cache():
    from tok.generators.sampling import SamplingOptions, sample

    state, _ = official()
    model = build(llamagen_rope=True)
    load_strict(model, state, DATA)
    labels = torch.tensor([1, 2])
    options = SamplingOptions(cfg=3.0, top_k=30)
    assert torch.equal(sample(model, labels, options=options, seed=3), sample(model, labels, options=options, seed=3, use_cache=False))


def test_load_official_checkpoint_file(tmp_path, monkeypatch):
    from tok.generators import convert

    # A LlamaGen-B checkpoint in the official .pt format is 440 MB; the format is the same at any
    # size, so the tiny reference model goes through the same code path.
    monkeypatch.setattr(convert, "preset", lambda name, **kw: GPTConfig(dim=64, depth=2, num_heads=2, **kw))
    monkeypatch.setattr(convert, "LLAMAGEN_VOCAB", 100)
    _, tensors = official()
    official_keys = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    path = tmp_path / "c2i_tiny.pt"
    torch.save({"model": official_keys, "steps": 10}, path)
    model = convert.load_llamagen(path, "tiny", image_size=64, num_classes=10)
    with torch.no_grad():
        logits = model(model.pattern.inputs(tensors["ids"][..., None]), tensors["labels"])[:, :, 0]
    assert (logits - tensors["logits"]).abs().max() < 1e-5
    torch.save({"model": {**official_keys, "extra.weight": torch.zeros(1)}}, path)
    with pytest.raises(TokError, match="1 unexpected keys \\(extra.weight\\)"):
        convert.load_llamagen(path, "tiny", image_size=64, num_classes=10)
