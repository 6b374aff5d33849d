"""`Tokenizer.compile_networks`: every family names the network parts its encode / decode call
as modules (compiling any other part would do nothing), compiling keeps the state-dict keys, and
a compiled model gives the eager outputs, also after its weights change."""

import pytest
import torch
from random_models import random_inputs, random_model

from tok.core.errors import TokError
from tok.core.tokenizer import Tokenizer

FAMILIES = ["flextok-tiny", "wavtokenizer-tiny", "xy-tokenizer-tiny", "tokenflow-tiny", "hieratok-tiny",
            "omnitokenizer-tiny", "vat-tiny"]


@pytest.mark.parametrize("name", FAMILIES)
def test_compile_parts_are_the_modules_encode_and_decode_call(name):
    model = random_model(name)
    assert model.compile_parts, f"{name} has no compile path"
    calls = {path: 0 for path in model.compile_parts}
    for path in model.compile_parts:
        part = model.get_submodule(path)
        assert sum(p.numel() for p in part.parameters()) > 0, f"{path} holds no weights"
        part.register_forward_hook(lambda *_, path=path: calls.__setitem__(path, calls[path] + 1))
    model.decode(model.encode(random_inputs(name, model)))
    assert all(calls.values()), f"never called as modules: {[p for p, n in calls.items() if not n]}"


@pytest.mark.parametrize("name", ["tokenflow-tiny", "vat-tiny"])
def test_compile_networks_wraps_the_parts_and_keeps_the_state_dict(name):
    model = random_model(name)
    keys = list(model.state_dict())
    assert not model.compiled
    assert model.compile_networks() is model  # lazy: nothing compiles before the first call
    assert model.compiled
    assert list(model.state_dict()) == keys  # checkpoints save and load as before


def test_compile_networks_refuses_unknown_modes_and_families_without_parts():
    model = random_model("hieratok-tiny")
    with pytest.raises(TokError, match="compile mode 'fastest': expected one of .*reduce-overhead"):
        model.compile_networks("fastest")
    assert not model.compiled

    class Plain(Tokenizer):
        modality = "image"

    with pytest.raises(TokError, match="plain has no compile path"):
        Plain(None).compile_networks()


@pytest.mark.slow
def test_compiled_tokenflow_matches_eager_and_follows_weight_changes():
    # Convolutions are where freezing pre-packs weights, so a stale copy would show here first.
    model = random_model("tokenflow-tiny")
    x = random_inputs("tokenflow-tiny", model)
    tokens = model.encode(x)
    image = model.decode(tokens)
    model.compile_networks()
    compiled_tokens = model.encode(x)
    for a, b in zip(compiled_tokens.streams, tokens.streams):
        assert torch.equal(a, b)
    torch.testing.assert_close(model.decode(tokens), image, atol=1e-4, rtol=1e-4)

    with torch.no_grad():
        model.decoder.conv_out.weight.mul_(-1)  # flips the image
    changed = model.decode(tokens)
    assert (changed - image).abs().max() > 0.1
    eager = random_model("tokenflow-tiny")
    eager.load_state_dict(model.state_dict())
    torch.testing.assert_close(changed, eager.decode(tokens), atol=1e-4, rtol=1e-4)
