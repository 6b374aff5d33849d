"""`PrefixCausal`: the mask-free form of FlexTok's encoder mask gives the boolean mask's attention."""

import pytest
import torch

from tok.nn.attention import PrefixCausal, SelfAttention
from tok.tokenizers.flextok.model import FlexTokEncoder


@pytest.mark.parametrize("patches, registers", [(6, 4), (16, 1), (1, 5)])
def test_prefix_causal_equals_the_boolean_encoder_mask(patches, registers):
    torch.manual_seed(0)
    attention = SelfAttention(64, head_dim=16, scale=0.5).eval()
    x = torch.randn(3, patches + registers, 64)
    mask = FlexTokEncoder.attention_mask(patches, registers)
    with torch.no_grad():
        reference = attention(x, mask)
        out = attention(x, PrefixCausal(patches))
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    # A different split point is a different pattern: the test can tell them apart.
    if registers > 1:
        with torch.no_grad():
            assert (attention(x, PrefixCausal(patches + 1)) - reference).abs().max() > 1e-3


def test_flextok_encoder_uses_the_pattern_and_keeps_its_outputs():
    from tok.tokenizers.flextok import FlexTok, preset

    torch.manual_seed(0)
    model = FlexTok(preset("tiny")).eval()
    encoder = model.encoder
    assert encoder.pattern == PrefixCausal(model.config.num_patches)
    side = model.config.grid_size * model.config.patch_size
    latents = torch.randn(2, model.config.vae.latent_channels, side, side)
    with torch.no_grad():
        out = encoder(latents)
        encoder.pattern = FlexTokEncoder.attention_mask(model.config.num_patches, model.config.num_registers)
        torch.testing.assert_close(encoder(latents), out, rtol=1e-5, atol=1e-5)


def test_prefix_causal_runs_under_a_flop_counter():
    # torch cannot create its causal-bias tensor inside a dispatch mode: the pattern falls back
    # to a boolean mask there, so the speed harness can count a FlexTok encoder's FLOPs.
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    attention = SelfAttention(64, head_dim=16).eval()
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        reference = attention(x, PrefixCausal(6))
        with FlopCounterMode(display=False) as counter:
            counted = attention(x, PrefixCausal(6))
    torch.testing.assert_close(counted, reference, rtol=1e-5, atol=1e-6)
    assert counter.get_total_flops() >= 4 * 2 * 10 * 64 * 64 * 2  # at least the four projections
