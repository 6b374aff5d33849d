"""Numerical parity with the official OmniTokenizer (FoundationVision/OmniTokenizer @ 701b619).

tests/data/make_omnitokenizer_parity.py ran the official encoder, decoder and codebook with
random weights on a photo and a 17-frame pan across it; here the same weights, loaded strictly
under the official key names, must give the same ids and reconstructions within 1e-4.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tok.core.weights import load_strict
from tok.tokenizers.omnitokenizer.config import OmniTokenizerConfig
from tok.tokenizers.omnitokenizer.model import OmniTokenizer

DATA = load_file(str(Path(__file__).parents[2] / "data" / "omnitokenizer_parity.safetensors"))
CONFIGS = {
    "joint": {"spatial_pos": "rope", "temporal_patch_size": 4, "attention": "sdpa"},
    "image": {"spatial_pos": "rel", "temporal_patch_size": 2, "attention": "explicit"},
}


def model(name: str) -> OmniTokenizer:
    cfg = OmniTokenizerConfig(
        resolution=128, dim=32, heads=2, dim_head=16, temporal_depth=2, n_codes=512, **CONFIGS[name]
    )
    net = OmniTokenizer(cfg)
    prefix = f"{name}.weights."
    state = {k[len(prefix):]: v.float() if v.is_floating_point() else v for k, v in DATA.items() if k.startswith(prefix)}
    load_strict(net, state, "parity weights")
    net.codebook.need_init = False
    return net.eval()


@pytest.mark.parametrize("name", ["joint", "image"])
@pytest.mark.parametrize("media", ["image", "clip"])
def test_ids_and_reconstruction_match_the_official_code(name, media):
    net = model(name)
    pixels = DATA[f"{media}_u8"].float() / 255 - 0.5
    x = pixels[None] if media == "clip" else pixels[None, :, None]
    with torch.inference_mode():
        ids = net.quantize(net.latents(x)).ids
        recon = net.decode_ids(ids)
    expected_ids = DATA[f"{name}.{media}_ids"]
    assert ids.shape == expected_ids.shape
    assert torch.equal(ids, expected_ids)
    expected = DATA[f"{name}.{media}_recon"]
    recon = recon[:, :, 0] if media == "image" else recon
    torch.testing.assert_close(recon, expected, atol=1e-4, rtol=0)


def test_the_two_attention_paths_differ_where_the_biases_matter():
    """The explicit path applies the rel bias and ALiBi; SDPA ignores them (the release code's pitfall)."""
    net = model("image")
    x = (DATA["clip_u8"].float() / 255 - 0.5)[None]
    with torch.inference_mode():
        explicit = net.decoder(net.post_vq_conv(net.latents(x)))
        net.set_attention_path("sdpa")
        sdpa = net.decoder(net.post_vq_conv(net.latents(x)))
    assert (explicit - sdpa).abs().max() > 1e-3
