"""OmniTokenizer architecture: parameter counts of the releases, shapes, clips, VAE, strict loading."""

from dataclasses import replace

import pytest
import torch
from omni_checkpoints import random_model

from tok import api
from tok.core import TokError
from tok.tokenizers.omnitokenizer import PRESETS, OmniTokenizer, preset
from tok.tokenizers.omnitokenizer.clips import clip_spans, decoded_frames, latent_spans

RELEASES = [name for name in PRESETS if name not in ("small", "tiny")]


def counts(name: str) -> tuple[int, int, int]:
    with torch.device("meta"):
        model = OmniTokenizer(PRESETS[name])
    params = lambda m: sum(p.numel() for p in m.parameters())
    return params(model.encoder), params(model.decoder), params(model)


def test_thirteen_releases_with_the_fact_sheet_parameter_counts():
    assert len(RELEASES) == 13
    # Fact sheet (RoPE joint config): encoder 26.8 M, decoder 26.9 M, total 53.7 M.
    encoder, decoder, total = counts("imagenet_k600")
    assert (round(encoder / 1e6, 1), round(decoder / 1e6, 1), round(total / 1e6, 1)) == (26.8, 26.9, 53.7)
    assert total == 53_708_440
    for name in ("imagenet_ucf", "imagenet_mit", "imagenet_sthv2", "celebahq_ucf", "celebahq_k600", "ffhq_ucf", "ffhq_k600"):
        assert counts(name)[2] == 53_708_440
    # VAE: pre_vq_conv 512 -> 16 instead of 8 (4 104 more weights).
    assert counts("imagenet_k600_vae")[2] == 53_708_440 + 512 * 8 + 8
    # Image-only: "rel" bias MLPs in the spatial layers too, tubelet embedding of 2 frames.
    assert counts("celebahq")[2] == counts("ffhq")[2] == counts("imagenet_only")[2] == 54_923_848


def test_release_presets_follow_the_scripts():
    assert PRESETS["imagenet_only"].attention == "explicit"  # README: trained without SDPA
    assert all(PRESETS[n].attention == "sdpa" for n in RELEASES if n != "imagenet_only")
    assert {PRESETS[n].temporal_patch_size for n in ("celebahq", "ffhq", "imagenet_only")} == {2}
    assert {PRESETS[n].spatial_pos for n in ("celebahq", "ffhq", "imagenet_only")} == {"rel"}
    assert PRESETS["ffhq_k600"].spatial_pos == "rope" and PRESETS["ffhq_k600"].temporal_patch_size == 4


def test_release_layout_gives_1x32x32_for_an_image_and_5x32x32_for_17_frames():
    """The release layout (8x8 patches, 4-frame tubelets, 8x8 windows) at a small width."""
    model = random_model(replace(preset("imagenet_k600"), dim=32, heads=2, dim_head=16, temporal_depth=1, enc_block="tw", dec_block="t"))
    with torch.inference_mode():
        image = model.encode(torch.rand(1, 3, 1, 256, 256) - 0.5)
        clip = model.encode(torch.rand(1, 3, 17, 256, 256) - 0.5)
    assert image.streams[0].shape == (1, 1, 32, 32) and clip.streams[0].shape == (1, 5, 32, 32)
    assert image.layout.kind == "grid" and image.layout.axes == (("t", "h", "w"),)
    assert model.decode(clip).shape == (1, 3, 17, 256, 256)


def test_clip_rule():
    assert clip_spans(17, 17, 4) == [(0, 17, 17)]
    assert clip_spans(40, 17, 4) == [(0, 17, 17), (17, 17, 17), (34, 6, 9)]
    assert clip_spans(1, 17, 4) == [(0, 1, 1)]
    assert latent_spans(5 + 5 + 3, 5) == [(0, 5), (5, 5), (10, 3)]
    assert decoded_frames(13, 5, 4) == 17 + 17 + 9


def test_long_video_is_encoded_clip_by_clip_and_equals_separate_clips(tiny_model):
    video = torch.rand(1, 3, 20, 64, 64) - 0.5  # tiny: 9-frame clips -> 9 + 9 + 2 (padded to 5)
    with torch.inference_mode():
        ids = tiny_model.encode(video).streams[0]
        first = tiny_model.encode(video[:, :, :9]).streams[0]
        padded_last = torch.cat([video[:, :, 18:], video[:, :, 19:].expand(-1, -1, 3, -1, -1)], dim=2)
        last = tiny_model.encode(padded_last).streams[0]
    assert ids.shape == (1, 3 + 3 + 2, 8, 8)
    assert torch.equal(ids[:, :3], first) and torch.equal(ids[:, 6:], last)
    assert tiny_model.decode(tiny_model.make_tokens([ids])).shape == (1, 3, 9 + 9 + 5, 64, 64)


@pytest.mark.parametrize("frames", [1, 9])
def test_cpu_inference_in_passes_of_a_few_items_equals_one_pass(frames):
    model = random_model(preset("tiny"))
    x = torch.rand(3, 3, frames, 64, 64) - 0.5
    model.cpu_pass_pixels = 10**9
    whole_ids = model.encode(x).streams[0]
    whole = model.decode(model.make_tokens([whole_ids]))
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0])) for m in (model.encoder, model.decoder)]
    model.cpu_pass_pixels = 2 * frames * 64 * 64  # two items per pass
    ids = model.encode(x).streams[0]
    recon = model.decode(model.make_tokens([whole_ids]))
    for h in hooks:
        h.remove()
    assert calls == [2, 1, 2, 1]
    assert torch.equal(ids, whole_ids)
    torch.testing.assert_close(recon, whole, rtol=0, atol=1e-5)


def test_bad_shapes_are_refused(tiny_model):
    with pytest.raises(ValueError, match="multiple of 64"):
        tiny_model.latents(torch.zeros(1, 3, 1, 72, 72))
    with pytest.raises(ValueError, match="must be square"):
        tiny_model.latents(torch.zeros(1, 3, 1, 64, 128))
    with pytest.raises(ValueError, match="multiple of the temporal patch 4"):
        tiny_model.latents(torch.zeros(1, 3, 4, 64, 64))


def test_training_forward_gives_recon_and_commitment(tiny_model):
    model = random_model(preset("tiny")).train()
    out = model(torch.rand(2, 3, 5, 64, 64) - 0.5)
    assert out.recon.shape == (2, 3, 5, 64, 64) and out.losses["commitment"] > 0
    (out.recon.square().mean() + out.losses["commitment"]).backward()
    assert model.encoder.to_patch_emb[2].weight.grad.abs().sum() > 0
    assert model.codebook.embeddings.grad is None  # EMA codebook: buffers, no gradients


def test_fresh_codebook_initialises_from_data_but_a_loaded_one_never(tiny_ckpt):
    fresh = OmniTokenizer(preset("tiny")).train()
    before = fresh.codebook.embeddings.clone()
    fresh(torch.rand(1, 3, 1, 64, 64) - 0.5)
    assert not fresh.codebook.need_init and not torch.allclose(before, fresh.codebook.embeddings)
    loaded = api.load("omnitokenizer-tiny", tiny_ckpt, "cpu")
    assert not loaded.codebook.need_init
    x = torch.rand(1, 3, 1, 64, 64) - 0.5
    with torch.inference_mode():
        ids = loaded.quantize(loaded.latents(x)).ids
    before = loaded.codebook.embeddings.clone()
    loaded.train()
    with torch.no_grad():
        loaded(x)
    unused = torch.ones(before.shape[0], dtype=torch.bool)
    unused[ids.flatten()] = False
    assert unused.sum() > 10
    # Only the EMA moves codes: codes that no vector chose keep their loaded values.
    torch.testing.assert_close(loaded.codebook.embeddings[unused], before[unused], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(loaded.codebook.embeddings[~unused], before[~unused])


def test_vae_variant_gives_latents_and_refuses_token_calls():
    model = random_model(replace(preset("tiny"), use_vae=True))
    video = torch.rand(1, 3, 9, 64, 64) - 0.5
    mean = model.encode_latents(video)
    assert mean.shape == (1, 8, 3, 8, 8)
    assert torch.equal(mean, model.encode_latents(video))  # the mean is deterministic
    assert not torch.equal(mean, model.encode_latents(video, sample=True))
    assert model.decode_latents(mean).shape == (1, 3, 9, 64, 64)
    with pytest.raises(TokError, match="is a VAE .* not a token model"):
        model.encode(video)
    with pytest.raises(TokError, match="is a VQ model"):
        random_model(preset("tiny")).encode_latents(video)


def test_models_listing_says_vae_checkpoints_are_not_token_models():
    cards = {card.name: card for card in api.list_models()}
    assert len([n for n in cards if n.startswith("omnitokenizer-")]) == 13 + 2
    assert "not a token model" in cards["omnitokenizer-imagenet-k600-vae"].tokens
    assert cards["omnitokenizer-imagenet-k600"].hf_files == ("imagenet_k600.ckpt",)
    assert cards["omnitokenizer-imagenet-k600"].tokens.startswith("32x32 grid x 8192 codes per image, 5x32x32 per 17-frame clip")


@pytest.mark.parametrize("explicit", [False, True])
def test_one_key_attention_returns_the_values_without_queries_and_keys(explicit):
    # Temporal layers on an image see one frame: the shortcut must equal full attention there.
    from tok.tokenizers.omnitokenizer.layers import Attention

    torch.manual_seed(0)
    attention = Attention(64, dim_head=16, heads=4, causal=True, spatial_pos="rel").eval()
    attention.explicit = explicit
    x = torch.randn(7, 1, 64)
    with torch.no_grad():
        torch.testing.assert_close(attention(x, is_spatial=False), attention.attend(x, is_spatial=False), rtol=1e-6, atol=1e-6)
        longer = torch.randn(7, 3, 64)  # more keys: the full path, unchanged
        assert torch.equal(attention(longer, is_spatial=False), attention.attend(longer, is_spatial=False))


def test_code_search_in_row_blocks_keeps_the_official_distances_bit_for_bit():
    """Blocks of 64 rows with addmm give the ids and the exact distances of the official one-matrix
    |z|^2 - 2 z.e + |e|^2 (ties resolve the same way)."""
    from tok.tokenizers.omnitokenizer.codebook import Codebook

    torch.manual_seed(0)
    codebook = Codebook(1024, 8)
    flat = torch.randn(301, 8)
    codes = codebook.embeddings
    official = (flat**2).sum(dim=1, keepdim=True) - 2 * flat @ codes.t() + (codes.t() ** 2).sum(dim=0, keepdim=True)
    ids = codebook.nearest(flat)
    assert torch.equal(ids, official.argmin(dim=1))
    blocks = [codebook.distances(z) for z in flat.split([64, 64, 64, 109])]  # row_blocks(301, 64)
    assert torch.equal(torch.cat(blocks), official)
