"""HieraTok: config errors, pyramid and fill tables, shapes, the scale-causal mask, prefixes, KL variant."""

import math

import pytest
import torch
import torch.nn.functional as F

from tok.core import TokError
from tok.tokenizers.hieratok import HieraTok, preset
from tok.tokenizers.hieratok.pyramid import area_pool_matrix, prefix_fill_index


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return HieraTok(preset("tiny")).eval()


def images(batch=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


# -- config ---------------------------------------------------------------------------------------
def test_default_config_is_the_fact_sheet_design():
    cfg = preset("b")
    assert cfg.scales == (1, 2, 4, 8, 16) and cfg.grid_size == 16
    assert cfg.num_tokens == 341 and cfg.scale_lengths[-1] == 256
    assert cfg.fsq_levels == (8, 8, 8, 5, 5, 5) and cfg.latent_channels == 6
    assert cfg.mask == "scale_causal" and cfg.refiner_depth == 0
    assert [(s.start, s.stop) for s in cfg.scale_slices()] == [(0, 1), (1, 5), (5, 21), (21, 85), (85, 341)]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"scales": (1, 3, 16)}, "scale 3 does not divide the finest 16x16 token map"),
        ({"scales": (1, 2, 8)}, "last scale must be the finest map 16"),
        ({"scales": (4, 2, 16)}, "strictly increasing"),
        ({"scales": ()}, "empty"),
        ({"image_size": 250}, "not a multiple of the patch size"),
        ({"mask": "causal"}, "mask must be one of scale_causal, full"),
        ({"bottleneck": "vq"}, "bottleneck must be one of fsq, kl"),
        ({"decoder_dim": 1000}, "not a multiple of head_dim"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(TokError, match=message):
        preset("b", **overrides)


def test_param_count_of_hieratok_b():
    """Fact sheet: ~85 M encoder (ViT-B) + ~300 M decoder (1024 wide, 24 deep)."""
    with torch.device("meta"):
        model = HieraTok(preset("b"))
    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for p in model.decoder.parameters())
    # Per block: 4 D^2 attention + 3 D int(8D/3) SwiGLU; plus patch embed, scale embeddings, norm, heads.
    block = lambda d: 4 * d * d + 3 * d * int(8 * d / 3)
    assert enc == 12 * block(768) + (3 * 16 * 16 * 768 + 768) + 5 * 768 + 2 * 768 + (768 * 6 + 6)
    assert dec == 24 * block(1024) + (6 * 1024 + 1024) + 5 * 1024 + 2 * 1024 + (1024 * 768 + 768)
    assert 84e6 < enc < 87e6 and 300e6 < dec < 305e6


# -- index tables -----------------------------------------------------------------------------------
def test_area_pool_matrix_equals_adaptive_avg_pool():
    scales, grid = (1, 2, 4, 8), 8
    fmap = torch.randn(2, 5, grid, grid)
    pyramid = area_pool_matrix(scales, grid) @ fmap.flatten(2).transpose(1, 2)  # (B, L, C)
    expected = torch.cat([F.adaptive_avg_pool2d(fmap, s).flatten(2).transpose(1, 2) for s in scales], dim=1)
    torch.testing.assert_close(pyramid, expected)


def test_prefix_fill_is_nearest_upsampling_of_the_last_kept_scale():
    scales = (1, 2, 4, 8)
    table = prefix_fill_index(scales)
    seq = torch.randn(1, sum(s * s for s in scales), 3)
    k = 2  # keep scales 1 and 2
    filled = seq[:, table[k - 1]]
    lengths = [s * s for s in scales]
    pieces = filled.split(lengths, dim=1)
    torch.testing.assert_close(filled[:, :5], seq[:, :5])
    kept = seq[:, 1:5].transpose(1, 2).reshape(1, 3, 2, 2)
    for side, piece in zip(scales[2:], pieces[2:]):
        up = F.interpolate(kept, size=(side, side), mode="nearest").flatten(2).transpose(1, 2)
        torch.testing.assert_close(piece, up)
    assert torch.equal(table[-1], torch.arange(table.shape[1]))  # all scales kept: identity


# -- model ------------------------------------------------------------------------------------------
def test_encode_decode_shapes_and_layout(tiny):
    x = images()
    tokens = tiny.encode(x)
    assert tokens.layout.kind == "scales" and tokens.layout.vocab_sizes == (64000,) * 3
    assert tokens.shapes == [(2, 1, 1), (2, 2, 2), (2, 4, 4)] and tokens.num_tokens == 21
    assert torch.equal(tiny.encode(x).streams[2], tokens.streams[2])  # deterministic
    y = tiny.decode(tokens)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    # decode(ids) is decode_latents(FSQ codes of the encoder)
    torch.testing.assert_close(y, tiny.decode_latents(tiny.encode_latents(x)))
    # the flat coarse-to-fine sequence decodes the same
    flat = torch.cat([s.flatten(1) for s in tokens.streams], dim=1)
    torch.testing.assert_close(tiny.decode(flat), y)


def test_prefixes(tiny):
    x = images()
    full = tiny.encode(x)
    prefix = tiny.encode(x, scales=2)
    assert prefix.shapes == [(2, 1, 1), (2, 2, 2)] and prefix.layout.num_streams == 2
    assert all(torch.equal(a, b) for a, b in zip(prefix.streams, full.streams))
    torch.testing.assert_close(tiny.decode(prefix), tiny.decode(full, scales=2))
    assert not torch.allclose(tiny.decode(full, scales=1), tiny.decode(full))
    with pytest.raises(TokError, match=r"number of scales must be an integer in 1\.\.2, got 3"):
        tiny.decode(prefix, scales=3)
    with pytest.raises(TokError, match=r"in 1\.\.3, got 0"):
        tiny.encode(x, scales=0)


def test_scale_causal_mask_blocks_coarse_from_fine(tiny):
    """Perturbing the latents of scale s leaves every decoder state of coarser scales unchanged."""
    z = tiny.encode_latents(images())
    slices = tiny.config.scale_slices()
    base = tiny.decoder.hidden(z, tiny.attn_mask)
    for s in range(1, 3):
        bumped = z.clone()
        bumped[:, slices[s]] += 0.5
        out = tiny.decoder.hidden(bumped, tiny.attn_mask)
        coarse = slice(0, slices[s].start)
        torch.testing.assert_close(out[:, coarse], base[:, coarse], rtol=0, atol=1e-6)
        assert (out[:, slices[s].start :] - base[:, slices[s].start :]).abs().max() > 1e-3
    # With mask="full" information reaches the coarse scales too.
    full = HieraTok(preset("tiny", mask="full")).eval()
    assert full.attn_mask is None
    bumped = z.clone()
    bumped[:, slices[2]] += 0.5
    delta = full.decoder.hidden(bumped, None)[:, :1] - full.decoder.hidden(z, None)[:, :1]
    assert delta.abs().max() > 1e-3


def test_refiner_blocks_use_the_same_mask():
    model = HieraTok(preset("tiny", refiner_depth=1)).eval()
    assert len(model.encoder.refiner) == 1
    h = torch.randn(2, 21, 64)
    bumped = h.clone()
    bumped[:, 5:] += 1.0  # the finest scale
    block = model.encoder.refiner[0]
    torch.testing.assert_close(block(bumped, model.attn_mask)[:, :5], block(h, model.attn_mask)[:, :5], rtol=0, atol=1e-6)
    assert model.encode(images()).num_tokens == 21


def test_single_scale_is_a_plain_vit_autoencoder():
    model = HieraTok(preset("tiny", scales=(4,))).eval()
    assert model.attn_mask is None and model.num_scales == 1
    tokens = model.encode(images())
    assert tokens.shapes == [(2, 4, 4)]
    assert model.decode(tokens).shape == (2, 3, 32, 32)


def test_bad_ids_and_sequences(tiny):
    tokens = tiny.encode(images())
    with pytest.raises(TokError, match="not a whole number of scales"):
        tiny.decode(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TokError, match=r"token ids must lie in \[0, 64000\)"):
        tiny.decode([s.clone().fill_(64000) for s in tokens.streams])
    with pytest.raises(TokError, match=r"scale 2 ids must have shape \(B, 2, 2\)"):
        tiny.decode([tokens.streams[0], tokens.streams[2]])
    with pytest.raises(TokError, match="expected 1..3 scales"):
        tiny.decode([])


def test_kl_variant():
    model = HieraTok(preset("tiny", bottleneck="kl")).eval()
    assert model.quantizer is None and model.config.latent_channels == 4
    x = images()
    z = model.encode_latents(x)
    assert z.shape == (2, 21, 4)
    assert model.decode_latents(z).shape == (2, 3, 32, 32)
    assert model.decode_latents(z[:, :5], num_scales=2).shape == (2, 3, 32, 32)
    with pytest.raises(TokError, match=r"expected latents \(B, 5, 4\) for 2 scales"):
        model.decode_latents(z, num_scales=2)
    with pytest.raises(TokError, match="continuous"):
        model.encode(x)
    model.train()
    out = model(x)
    assert out.recon.shape == x.shape and out.losses["kl"].ndim == 0 and out.losses["kl"] > 0
    # normalisation buffers are part of the checkpoint
    assert {"latent_mean", "latent_scale"} <= set(model.state_dict())


def test_training_pass_with_prefix_dropout_backpropagates():
    model = HieraTok(preset("tiny", prefix_dropout=1.0)).train()
    out = model(images())
    F.l1_loss(out.recon, images()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_prefix_dropout_one_hides_the_finest_latents():
    """With prefix_dropout = 1 every sample decodes from a strict prefix of the scales, so the
    finest-scale encoder outputs get no gradient."""
    model = HieraTok(preset("tiny", prefix_dropout=1.0)).train()
    x = images()
    params = model.encoder(x, model.attn_mask).detach().requires_grad_(True)
    z = model.quantizer(params).z_q
    k = torch.randint(1, model.num_scales, (2,))
    recon = model.decoder(model.fill_prefix(z, k), model.attn_mask)
    recon.abs().mean().backward()
    assert params.grad[:, 5:].abs().max() == 0 and params.grad[:, :5].abs().max() > 0


def test_fill_prefix_per_sample(tiny):
    z = torch.randn(3, 21, 6)
    out = tiny.fill_prefix(z, torch.tensor([1, 2, 3]))
    torch.testing.assert_close(out[0], tiny.fill_prefix(z[:1, :1], 1)[0])
    torch.testing.assert_close(out[1], tiny.fill_prefix(z[1:2, :5], 2)[0])
    torch.testing.assert_close(out[2], z[2])


def test_token_bits_match_vocabulary(tiny):
    tokens = tiny.encode(images())
    assert math.isclose(tokens[0].bits, 21 * math.log2(64000), rel_tol=1e-6)
