"""The opt-in `cpu_int8` switch: every family's network parts run dynamic int8 products in CPU
inference, outputs stay close to fp32, switching off restores the fp32 outputs exactly, and the
state dict does not change. (The tiny models are narrower than `MIN_FEATURES`, so the threshold
is lowered here; the bundled models' quality change is measured in README.)"""

import pytest
import torch
from random_models import random_inputs, random_model

import tok.nn.int8 as int8
from tok.core.errors import TokError
from tok.core.tokenizer import Tokenizer

pytestmark = pytest.mark.skipif(not int8.int8_supported(), reason="needs fbgemm (x86)")

# family -> bound on the decoded change, relative to the output's max. None: the random decode
# does not change (FlexTok's zero-initialised output layer; TokenFlow's pixel decoder is
# convolutional). inf: only "it changed", since a random Vocos head exponentiates log-magnitudes,
# which magnifies any change (the trained model's STOI change is measured in README).
FAMILIES = {"flextok-tiny": None, "wavtokenizer-tiny": float("inf"), "xy-tokenizer-tiny": 0.1, "tokenflow-tiny": None,
            "hieratok-tiny": 0.1, "omnitokenizer-tiny": 0.1, "vat-tiny": 0.1}


@pytest.mark.parametrize("name", FAMILIES)
def test_cpu_int8_switches_the_networks_and_back(name, monkeypatch):
    monkeypatch.setattr(int8, "MIN_FEATURES", 16)
    calls = []
    real = int8.int8_product
    monkeypatch.setattr(int8, "int8_product", lambda x, packed: calls.append(x.shape) or real(x, packed))
    model = random_model(name)
    keys = list(model.state_dict())
    x = random_inputs(name, model, batch=2)
    with torch.inference_mode():
        reference = model.encode(x)
        exact = model.decode(reference)
        model.cpu_int8 = True
        assert model.cpu_int8 and list(model.state_dict()) == keys
        fast = model.encode(x)
        recon = model.decode(reference)
        assert calls, "no int8 product ran"
        # The tokens record int8 where its layers run in encode (not FlexTok's decoder-only int8,
        # nor WavTokenizer's, whose encoder has no int8 layers: their ids stay exact).
        if name in ("flextok-tiny", "wavtokenizer-tiny"):
            assert fast.encoder_options == {} and all(torch.equal(a, b) for a, b in zip(fast.streams, reference.streams))
        else:
            assert fast.encoder_options == {"cpu_int8": True}
        model.cpu_int8 = False
        assert torch.equal(model.decode(reference), exact)  # switching off restores fp32
        assert reference.encoder_options == model.encode(x).encoder_options == {}
    assert not any(type(m).__name__.startswith("Int8") for m in model.modules())
    equal = torch.cat([(a == b).flatten().float() for a, b in zip(fast.streams, reference.streams)]).mean()
    assert equal > 0.5, f"only {equal:.0%} of the ids survive int8"
    assert recon.shape == exact.shape and recon.dtype == exact.dtype and torch.isfinite(recon).all()
    if FAMILIES[name] is not None:
        assert 0 < (recon - exact).abs().max() < FAMILIES[name] * exact.abs().max()


def test_a_model_without_network_parts_refuses_int8():
    class Plain(Tokenizer):
        modality = "image"

    plain = Plain(None)
    plain.cpu_int8 = False  # switching off is always possible
    with pytest.raises(TokError, match="plain has no int8 CPU inference path"):
        plain.cpu_int8 = True
    assert plain.cpu_int8 is False
