"""TokenFlow model: the dual codebook, Tokens layout, prefix decoding, training path."""

import pytest
import torch
import torch.nn.functional as F

from tok.core import Tokens, TokError
from tok.core.quantize import flatten_scale_ids
from tok.tokenizers.tokenflow import PRESETS, DualCodebookQuantizer, TokenFlow


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = TokenFlow(PRESETS["tiny"]).eval()
    m.name = "tokenflow-tiny"
    return m


def images(batch=2, size=32, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- dual codebook -------------------------------------------------------------------------------


def test_one_index_minimises_the_summed_distances_of_the_normalised_halves():
    torch.manual_seed(0)
    q = DualCodebookQuantizer(50, semantic_dim=6, pixel_dim=3, usage_size=64).eval()
    z = torch.randn(4, 5, 9)
    out = q(z)
    zs, zp = F.normalize(z[..., :6], dim=-1), F.normalize(z[..., 6:], dim=-1)
    es, ep = F.normalize(q.embedding_vqkd.weight, dim=-1), F.normalize(q.embedding_vqgan.weight, dim=-1)
    d = ((zs[..., None, :] - es) ** 2).sum(-1) + ((zp[..., None, :] - ep) ** 2).sum(-1)
    assert torch.equal(out.ids, d.argmin(-1))
    # The joint choice differs from what either half alone would pick somewhere.
    sem_only = ((zs[..., None, :] - es) ** 2).sum(-1).argmin(-1)
    pix_only = ((zp[..., None, :] - ep) ** 2).sum(-1).argmin(-1)
    assert not torch.equal(out.ids, sem_only) or not torch.equal(out.ids, pix_only)
    expected = torch.cat([es[out.ids], ep[out.ids]], dim=-1)
    torch.testing.assert_close(out.z_q, expected)
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q)


def test_row_blocks_keep_the_official_distances_bit_for_bit():
    """The search in 64-row blocks with addmm gives the bits of the official one-product formula
    |z|^2 + |e|^2 - 2 z.e over all rows (ids equal, every distance equal), so ties go the same way."""
    from tok.core.quantize import row_blocks
    from tok.tokenizers.tokenflow.quantizer import squared_distances

    assert row_blocks(10, 64) == [10] and row_blocks(127, 64) == [127] and row_blocks(300, 64) == [64, 64, 64, 108]
    torch.manual_seed(0)
    q = DualCodebookQuantizer(4096, usage_size=64).eval()
    e_sem, e_pix = q.codebooks()
    z_sem, z_pix = F.normalize(torch.randn(301, 32), dim=-1), F.normalize(torch.randn(301, 8), dim=-1)

    def official(z, e):
        return torch.sum(z**2, dim=1, keepdim=True) + torch.sum(e**2, dim=1) - 2 * torch.einsum("bd,dn->bn", z, e.t())

    expected = official(z_sem, e_sem) + official(z_pix, e_pix)
    assert torch.equal(squared_distances(z_sem, e_sem), official(z_sem, e_sem))
    blocks = [q.joint_distances(s, p, e_sem, e_pix) for s, p in zip(z_sem.split(row_blocks(301, 64)), z_pix.split(row_blocks(301, 64)))]
    assert torch.equal(torch.cat(blocks), expected)
    assert torch.equal(q.nearest(z_sem, z_pix, e_sem, e_pix), expected.argmin(1))


def test_vq_losses_straight_through_and_usage():
    torch.manual_seed(1)
    q = DualCodebookQuantizer(16, semantic_dim=4, pixel_dim=2, beta=0.25, usage_size=32).train()
    z = torch.randn(3, 10, 6, requires_grad=True)
    out = q(z)
    zn = torch.cat([F.normalize(z[..., :4], dim=-1), F.normalize(z[..., 4:], dim=-1)], dim=-1)
    mse = ((q.ids_to_codes(out.ids) - zn) ** 2).mean()
    torch.testing.assert_close(out.parts["codebook"], mse)
    torch.testing.assert_close(out.parts["commit"], 0.25 * mse)
    torch.testing.assert_close(out.loss, 1.25 * mse)
    out.z_q.sum().backward(retain_graph=True)
    assert z.grad.abs().sum() > 0  # straight-through to the input
    q.zero_grad()
    out.parts["codebook"].backward()
    assert q.embedding_vqkd.weight.grad.abs().sum() > 0 and q.embedding_vqgan.weight.grad.abs().sum() > 0
    assert torch.equal(q.codebook_used[-2:].long(), out.ids.flatten()[-2:])  # newest ids at the end
    assert 0 < q.usage() <= 1


def test_entropy_term_is_optional():
    q = DualCodebookQuantizer(16, semantic_dim=4, pixel_dim=2, entropy_loss_ratio=0.1, usage_size=32)
    assert set(q(torch.randn(2, 5, 6)).parts) == {"codebook", "commit", "entropy"}


# -- model ---------------------------------------------------------------------------------------


def test_encode_gives_one_stream_per_scale_and_decodes(model):
    x = images()
    tokens = model.encode(x)
    assert tokens.layout.kind == "scales"
    assert tokens.shapes == [(2, 1, 1), (2, 2, 2), (2, 4, 4)] and tokens.num_tokens == 21
    assert tokens.layout.extra["scales"] == [1, 2, 4]
    y = model.decode(tokens)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.equal(flatten_scale_ids(tokens.streams), model.encode_ids(x))
    # Deterministic in eval mode.
    assert all(torch.equal(a, b) for a, b in zip(tokens.streams, model.encode(x).streams))


def test_prefix_of_scales_decodes_coarse_images(model, tmp_path):
    x = images()
    full = model.encode(x)
    coarse = model.encode(x, num_scales=2)
    assert coarse.shapes == [(2, 1, 1), (2, 2, 2)]
    assert all(torch.equal(a, b) for a, b in zip(coarse.streams, full.streams[:2]))
    path = coarse.save(tmp_path / "coarse.tok")
    loaded = Tokens.load(path)
    y = model.decode(loaded)
    with torch.inference_mode():
        expected = model.decode_pixels(model.ids_to_features(full.streams[:2])).clamp(-1, 1)
    torch.testing.assert_close(y, expected)
    assert not torch.allclose(y, model.decode(full))
    # A flat sequence whose length is a sum of whole scales works too; others are refused.
    torch.testing.assert_close(model.decode(flatten_scale_ids(full.streams)[:, :5]), y)
    with pytest.raises(TokError, match=r"length 7 is not a sum of whole scales \(allowed lengths: 1, 5, 21\)"):
        model.decode(flatten_scale_ids(full.streams)[:, :7])


def test_bad_tokens_and_images_are_refused(model):
    tokens = model.encode(images())
    bad = [s.clone() for s in tokens.streams]
    bad[1][0, 0, 0] = 64
    with pytest.raises(TokError, match=r"token ids must lie in \[0, 64\), got \[\d+, 64\]"):
        model.decode(bad)
    with pytest.raises(TokError, match=r"stream 1 has ids in \[\d+, 64\], outside the vocabulary \[0, 64\)"):
        model.make_tokens(bad)
    with pytest.raises(TokError, match=r"not a prefix of scales \[1, 2, 4\]"):
        model.decode([tokens.streams[1]])
    other = Tokens(tokens.streams, tokens.layout, "flextok-small")
    with pytest.raises(TokError, match="made by model 'flextok-small'"):
        model.decode(other)
    with pytest.raises(TokError, match=r"tokenflow-tiny: expected images \(B, 3, 32, 32\) in \[-1, 1\], got \(1, 3, 48, 48\)"):
        model.encode(images(1, 48))
    with pytest.raises(TokError, match="number of scales must be an integer in 1..3"):
        model.encode(images(), num_scales=4)


def test_features_for_understanding_models(model):
    feats = model.features(images())
    assert feats["quantized"].shape == (2, 12, 4, 4)  # tiny: 8 semantic + 4 pixel channels
    assert feats["continuous"].shape == (2, 12, 4, 4)
    assert feats["semantic"].shape == (2, 16, 16)
    ids = model.encode(images()).streams
    with torch.inference_mode():
        torch.testing.assert_close(model.ids_to_features(ids), feats["quantized"], atol=1e-5, rtol=1e-5)


def test_training_forward_returns_losses_and_drops_scales():
    torch.manual_seed(0)
    m = TokenFlow(PRESETS["tiny"]).train()
    x = images()
    out = m(x)
    assert out.recon.shape == x.shape and out.semantic.shape == (2, 16, 16)
    assert set(out.losses) == {"codebook", "commit"}
    (out.recon.square().mean() + out.semantic.square().mean() + sum(out.losses.values())).backward()
    assert m.encoder.conv_in.weight.grad.abs().sum() > 0 and m.encoder_vqkd.conv1.weight.grad.abs().sum() > 0
    seen = {len(m(x).quantized.scales) for _ in range(25)}
    assert seen == {2, 3}  # p = 0.1 of dropping one scale
    m.eval()
    assert len(m(x).quantized.scales) == 3


def test_small_preset_fits_the_bundle_budget():
    with torch.device("meta"):
        m = TokenFlow(PRESETS["small"])
    size = sum(t.numel() * 2 for t in m.state_dict().values())
    assert size <= 3.5e6
    assert PRESETS["small"].num_tokens == 130


def test_next_scale_inputs_follow_the_t2i_recipe(model):
    ids = model.encode(images()).streams
    with torch.inference_mode():
        inputs = model.next_scale_inputs(ids)
        assert [tuple(x.shape) for x in inputs] == [(2, 12, 2, 2), (2, 12, 4, 4)]
        c0 = model.quantize.ids_to_codes(ids[0]).permute(0, 3, 1, 2)
        c1 = model.quantize.ids_to_codes(ids[1]).permute(0, 3, 1, 2)
        first = F.interpolate(c0, size=(2, 2), mode="bicubic")
        torch.testing.assert_close(inputs[0], first)
        torch.testing.assert_close(inputs[1], F.interpolate(first + c1, size=(4, 4), mode="bicubic"))


def test_cpu_inference_in_passes_of_a_few_images_equals_one_pass(model):
    x = images(batch=3)
    model.cpu_pass_pixels = 10**9
    whole = model.encode(x)
    whole_recon = model.decode(whole)
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0])) for m in (model.encoder, model.decoder)]
    model.cpu_pass_pixels = 2 * 32 * 32  # two images per pass
    try:
        tokens = model.encode(x)
        recon = model.decode(whole)
    finally:
        for h in hooks:
            h.remove()
        del model.cpu_pass_pixels  # back to the class default
    assert calls == [2, 1, 2, 1]
    assert all(torch.equal(a, b) for a, b in zip(tokens.streams, whole.streams))
    torch.testing.assert_close(recon, whole_recon, rtol=0, atol=1e-5)
