"""Numerical parity with the official FlexTok layers (apple/ml-flextok @ 87d00cc).

Reference tensors were recorded by tests/data/make_flextok_parity.py from the official classes
with random weights; here the same weights go into our modules under the same key names.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tok.core.quantize import FSQQuantizer
from tok.nn.attention import PrefixCausal
from tok.nn.embeddings import TimestepEmbedder, sincos_2d
from tok.nn.transformer import AdaLNBlock, Block
from tok.tokenizers.flextok.model import AdaLNLinearHead, FlexTokEncoder, PatchEmbedder, Transformer

DATA = load_file(str(Path(__file__).parents[2] / "data" / "flextok_parity.safetensors"))
DIM, HEAD, PATCHES, REGISTERS, CHANNELS, GRID, P = 64, 32, 16, 8, 16, 4, 2
SCALE = 8.0 / HEAD  # official muP softmax scale


def load(module, prefix):
    state = {k[len(prefix) + 1 :]: v for k, v in DATA.items() if k.startswith(prefix + ".") and k[len(prefix) + 1 :] in module.state_dict()}
    assert set(state) == set(module.state_dict()), set(module.state_dict()) ^ set(state)
    module.load_state_dict(state)
    return module.eval()


@pytest.mark.parametrize("form", ["boolean mask", "PrefixCausal"])
def test_encoder_trunk_with_register_mask(form):
    trunk = load(Transformer([Block(DIM, HEAD, attn_scale=SCALE) for _ in range(2)]), "encoder")
    mask = FlexTokEncoder.attention_mask(PATCHES, REGISTERS) if form == "boolean mask" else PrefixCausal(PATCHES)
    x = DATA["encoder.input"]
    with torch.no_grad():
        for block in trunk.blocks:
            x = block(x, mask)
    torch.testing.assert_close(x, DATA["encoder.output"], atol=1e-5, rtol=1e-5)


def test_decoder_trunk_with_two_way_adaln():
    trunk = load(Transformer([AdaLNBlock(DIM, HEAD, attn_scale=SCALE, num_segments=2) for _ in range(2)]), "decoder")
    x = DATA["decoder.input"]
    with torch.no_grad():
        for block in trunk.blocks:
            x = block(x, DATA["decoder.cond"], (PATCHES, REGISTERS))
    torch.testing.assert_close(x, DATA["decoder.output"], atol=1e-5, rtol=1e-5)


def test_fsq_ids_and_codes():
    out = FSQQuantizer((8, 8, 8, 5, 5, 5))(DATA["fsq.input"])
    assert torch.equal(out.ids, DATA["fsq.ids"])
    torch.testing.assert_close(out.z_q, DATA["fsq.codes"])


def test_time_embedder():
    embedder = load(TimestepEmbedder(DIM, 256, max_timestep=1.0), "time")
    with torch.no_grad():
        torch.testing.assert_close(embedder(DATA["time.input"]), DATA["time.output"], atol=1e-5, rtol=1e-5)


def test_sincos_table():
    torch.testing.assert_close(sincos_2d(GRID, GRID, DIM), DATA["posemb.table"])


def test_patch_embedding_order():
    embed = load(PatchEmbedder(P, CHANNELS, DIM), "patch")
    with torch.no_grad():
        torch.testing.assert_close(embed(DATA["patch.input"]), DATA["patch.output"], atol=1e-5, rtol=1e-5)


def test_velocity_head_and_unpatchify():
    from einops import rearrange

    head = load(AdaLNLinearHead(DIM, P * P * CHANNELS), "head")
    with torch.no_grad():
        flat = head(DATA["head.input"], DATA["decoder.cond"])
    grid = rearrange(flat, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=GRID, p1=P, p2=P)
    torch.testing.assert_close(grid, DATA["head.output"], atol=1e-5, rtol=1e-5)


def test_normalized_guidance_with_momentum():
    from tok.tokenizers.flextok.model import AdaptiveProjectedGuidance

    apg = AdaptiveProjectedGuidance()
    for step in range(3):
        guided = apg(DATA[f"apg.cond.{step}"], DATA[f"apg.uncond.{step}"], 7.5)
        torch.testing.assert_close(guided, DATA[f"apg.output.{step}"])
