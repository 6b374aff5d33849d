"""Parity with the official TokenFlow code on recorded reference outputs.

`tests/data/tokenflow_parity.safetensors` was made by `tests/data/make_tokenflow_parity.py`
running the official module (ByteVisionLab/TokenFlow @ 9812da0) at test size with random weights:
a B-like model (CLIP tower at raw [-1, 1] pixels, interpolated CLIP and decoder position
embeddings, `infer_interpolate`) and an XL-like one (SigLIP tower with its scaling layer,
penultimate hidden state, pixel branch at a resized resolution).
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from tok.core.quantize import flatten_scale_ids, split_scale_ids
from tok.core.weights import load_strict
from tok.tokenizers.tokenflow import PRESETS, TokenFlow, TokenFlowConfig

DATA = Path(__file__).resolve().parents[2] / "data" / "tokenflow_parity.safetensors"

SMALL_PIXEL = {"ch": 32, "ch_mult": (1, 1, 1, 1, 1), "num_res_blocks": 1, "z_channels": 32, "decoder_ch": 32, "decoder_res_blocks": 1}
CONFIGS = {
    "b": TokenFlowConfig(
        teacher="clipb_224", image_size=64, scales=(1, 2, 3, 4), pixel_size=64, codebook_size=128,
        semantic_width=64, semantic_layers=2, semantic_heads=4, semantic_patch=16, semantic_image_size=48,
        decoder_depth=1, decoder_heads=4, decoder_grid=7, semantic_out_dim=48, usage_size=512, **SMALL_PIXEL,
    ),
    "xl": TokenFlowConfig(
        teacher="siglip_384", image_size=56, scales=(1, 2, 3, 4), pixel_size=64, codebook_size=128,
        semantic_width=64, semantic_layers=3, semantic_heads=4, semantic_patch=14, semantic_mlp=128,
        semantic_image_size=56, decoder_depth=3, decoder_heads=4, decoder_grid=27, semantic_out_dim=1152,
        usage_size=512, **SMALL_PIXEL,
    ),
}


@pytest.fixture(scope="module")
def reference():
    return load_file(str(DATA))


def official_model(reference, variant: str) -> TokenFlow:
    prefix = f"{variant}.weights."
    state = {k[len(prefix) :]: v.float() for k, v in reference.items() if k.startswith(prefix)}
    if variant == "xl":
        # transformers 5 dropped the `vision_model.` level that the released checkpoint has.
        state = {k.replace("encoder_vqkd.", "encoder_vqkd.vision_model.", 1): v for k, v in state.items()}
    model = TokenFlow(CONFIGS[variant])
    load_strict(model, state, f"parity {variant}")
    return model.eval()


@pytest.mark.parametrize("variant", ["b", "xl"])
def test_ids_and_features_match_the_official_encode(reference, variant):
    model = official_model(reference, variant)
    x = reference[f"{variant}.input"]
    with torch.inference_mode():
        out = model.quantize_multiscale(model.encode_continuous(x))
    assert torch.equal(flatten_scale_ids(out.ids), reference[f"{variant}.ids"])
    torch.testing.assert_close(out.z_q, reference[f"{variant}.f_hat"], atol=1e-4, rtol=0)
    assert torch.equal(model.encode_ids(x), reference[f"{variant}.ids"])


@pytest.mark.parametrize("variant", ["b", "xl"])
def test_decoders_match_the_official_decode(reference, variant):
    model = official_model(reference, variant)
    f_hat = reference[f"{variant}.f_hat"]
    with torch.inference_mode():
        semantic = model.decode_semantic(f_hat)
        raw = model.decoder(model.post_quant_conv(f_hat[:, 32:]))
        image = model.decode_pixels(f_hat)
    torch.testing.assert_close(semantic, reference[f"{variant}.semantic"], atol=1e-4, rtol=0)
    torch.testing.assert_close(raw, reference[f"{variant}.raw_image"], atol=1e-4, rtol=0)
    if variant == "b":
        torch.testing.assert_close(image, reference["b.image"], atol=1e-4, rtol=0)
    else:  # XL decodes at 64 = 16 * 4 px and resizes to the input size (384 in the release)
        torch.testing.assert_close(image, F.interpolate(raw, size=(56, 56), mode="bicubic"))


def test_decoding_ids_matches_the_official_decode_code(reference):
    model = official_model(reference, "b")
    ids = reference["b.ids"]
    with torch.inference_mode():
        f_hat = model.ids_to_features(ids)
        torch.testing.assert_close(model.decode_pixels(f_hat), reference["b.code_image"], atol=1e-4, rtol=0)
        torch.testing.assert_close(model.decode_semantic(f_hat), reference["b.code_semantic"], atol=1e-4, rtol=0)
        prefix = model.decode_pixels(model.ids_to_features(ids[:, :5]))
        torch.testing.assert_close(prefix, reference["b.prefix_image"], atol=1e-4, rtol=0)
        # The public decode clamps to [-1, 1] and accepts per-scale Tokens.
        tokens = model.make_tokens(split_scale_ids(ids, model.config.scales))
        torch.testing.assert_close(model.decode(tokens), reference["b.code_image"].clamp(-1, 1), atol=1e-4, rtol=0)


def test_official_parameter_counts():
    """Counts of the released configurations, recorded by building the official classes."""
    with safe_open(str(DATA), framework="pt") as f:
        official = json.loads(f.metadata()["official_counts"])
    for variant, preset_name in (("b", "b"), ("xl", "xl")):
        with torch.device("meta"):
            model = TokenFlow(PRESETS[preset_name])
        assert sum(p.numel() for p in model.parameters()) == official[variant]
        assert len(model.state_dict()) == official[f"{variant}.keys"]
    # The fact sheet's rounded figure for B: 376.6 M.
    assert round(official["b"] / 1e6, 1) == 376.6
    assert official["xl.decoder_vqkd.pos_embed"] == [1, 730, 1152]
