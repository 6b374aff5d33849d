"""The opt-in `cpu_bf16` switch of TokenFlow, OmniTokenizer and XY-Tokenizer (FlexTok's and
WavTokenizer's have their own tests): the networks run under bf16 autocast, the code searches in
fp32, outputs come back as fp32 close to the fp32 path; families without a bf16 path refuse it."""

import pytest
import torch
from random_models import random_inputs, random_model

from tok.core.errors import TokError


@pytest.mark.parametrize("name", ["tokenflow-tiny", "omnitokenizer-tiny", "xy-tokenizer-tiny"])
def test_cpu_bf16_runs_the_networks_in_bf16_and_stays_close(name):
    model = random_model(name)
    x = random_inputs(name, model, batch=2)
    reference = model.encode(x)
    exact = model.decode(reference)
    model.cpu_bf16 = True
    try:
        fast = model.encode(x)
        recon = model.decode(reference)
    finally:
        model.cpu_bf16 = False
    equal = torch.cat([(a == b).flatten().float() for a, b in zip(fast.streams, reference.streams)]).mean()
    assert equal > 0.5, f"only {equal:.0%} of the ids survive bf16"
    assert fast.encoder_options == {"cpu_bf16": True} and reference.encoder_options == {}
    assert recon.dtype == torch.float32 and recon.shape == exact.shape
    # Not bit-equal (bf16 really ran), yet close to the fp32 decode.
    assert 0 < (recon - exact).abs().max() < 0.05 * exact.abs().max()
    torch.testing.assert_close(model.decode(reference), exact)  # switching off restores fp32


@pytest.mark.parametrize("name", ["hieratok-tiny", "vat-tiny"])
def test_families_without_a_bf16_path_refuse_the_switch(name):
    model = random_model(name)
    model.cpu_bf16 = False
    with pytest.raises(TokError, match=f"{model.name} has no bf16 CPU inference path"):
        model.cpu_bf16 = True
    assert model.cpu_bf16 is False
