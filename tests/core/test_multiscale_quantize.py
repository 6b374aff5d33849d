"""The shared VAR-style multi-scale residual quantizer (2D maps and 1D token sets)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tok.core.errors import TokError
from tok.core.quantize import (
    MultiScaleResidualQuantizer,
    Quantizer,
    QuantizerOutput,
    flatten_scale_ids,
    multi_scale_residual_quantize,
    scale_token_counts,
    split_scale_ids,
)


class NearestCodebook(Quantizer):
    """Plain nearest-neighbour VQ with a straight-through estimator (deterministic, no library)."""

    def __init__(self, dim: int, size: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(size, dim, generator=g))
        self.dim, self.vocab_size = dim, size

    def forward(self, z):
        self.check_input(z)
        flat = z.reshape(-1, self.dim)
        ids = torch.cdist(flat, self.table).argmin(-1).view(z.shape[:-1])
        codes = self.table[ids]
        codebook_loss = F.mse_loss(codes, z.detach())
        return QuantizerOutput(z + (codes - z).detach(), ids, codebook_loss, {"codebook": codebook_loss})

    def ids_to_codes(self, ids):
        return self.table[ids]

    def codebook(self):
        return self.table


class Exact(Quantizer):
    """Returns its input unchanged (ids all zero): the residual must then vanish at the last scale."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim, self.vocab_size = dim, 1

    def forward(self, z):
        return QuantizerOutput(z, torch.zeros(z.shape[:-1], dtype=torch.long), z.new_zeros(()))


def reference_2d(z, scales, codebook):
    """The algorithm written out with explicit interpolation calls."""
    full = z.shape[-1]
    residual, f_hat, ids = z.clone(), torch.zeros_like(z), []
    for s in scales:
        r = F.interpolate(residual, size=(s, s), mode="area")
        flat = r.permute(0, 2, 3, 1).reshape(-1, r.shape[1])
        idx = torch.cdist(flat, codebook).argmin(-1)
        q = codebook[idx].view(r.shape[0], s, s, -1).permute(0, 3, 1, 2)
        q = F.interpolate(q, size=(full, full), mode="bicubic")
        f_hat, residual = f_hat + q, residual - q
        ids.append(idx.view(-1, s, s))
    return f_hat, ids


def test_2d_matches_written_out_algorithm_and_decodes_from_ids():
    torch.manual_seed(0)
    q = MultiScaleResidualQuantizer(NearestCodebook(6, 32), scales=(1, 2, 3, 5)).eval()
    z = torch.randn(2, 6, 5, 5)
    out = q(z)
    ref_q, ref_ids = reference_2d(z, (1, 2, 3, 5), q.quantizer.table.detach())
    assert [tuple(i.shape) for i in out.ids] == [(2, 1, 1), (2, 2, 2), (2, 3, 3), (2, 5, 5)]
    for a, b in zip(out.ids, ref_ids):
        assert torch.equal(a, b)
    torch.testing.assert_close(out.z_q, ref_q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q, atol=1e-5, rtol=1e-5)
    assert out.scales == (1, 2, 3, 5) and q.token_counts == [1, 4, 9, 25]
    assert set(out.parts) == {"codebook"}


def test_prefix_decoding_gives_the_partial_sums():
    torch.manual_seed(1)
    q = MultiScaleResidualQuantizer(NearestCodebook(4, 16), scales=(1, 2, 4)).eval()
    ids = q(torch.randn(3, 4, 4, 4)).ids
    book = q.quantizer.table.detach()
    coarse = F.interpolate(book[ids[0]].permute(0, 3, 1, 2), size=(4, 4), mode="bicubic")
    torch.testing.assert_close(q.ids_to_codes(ids[:1]), coarse)
    two = coarse + F.interpolate(book[ids[1]].permute(0, 3, 1, 2), size=(4, 4), mode="bicubic")
    torch.testing.assert_close(q.ids_to_codes(ids[:2]), two)


@pytest.mark.parametrize("spatial_dims,shape,scales", [(2, (2, 3, 6, 6), (1, 2, 3, 6)), (2, (2, 3, 4, 6), ((1, 2), (2, 3), (4, 6))), (1, (2, 3, 16), (1, 2, 4, 8, 16))])
def test_exact_quantizer_reconstructs_the_input(spatial_dims, shape, scales):
    z = torch.randn(shape)
    out = MultiScaleResidualQuantizer(Exact(3), scales, spatial_dims=spatial_dims)(z)
    torch.testing.assert_close(out.z_q, z, atol=1e-5, rtol=1e-5)
    sizes = [((s, s) if isinstance(s, int) else s) if spatial_dims == 2 else (s,) for s in scales]
    assert [tuple(i.shape[1:]) for i in out.ids] == sizes


def test_1d_token_sets_use_linear_upsampling():
    torch.manual_seed(2)
    q = MultiScaleResidualQuantizer(NearestCodebook(5, 8), scales=(1, 3, 7), spatial_dims=1).eval()
    z = torch.randn(2, 5, 7)
    out = q(z)
    assert [tuple(i.shape) for i in out.ids] == [(2, 1), (2, 3), (2, 7)]
    book = q.quantizer.table.detach()
    first = F.interpolate(book[out.ids[0]].transpose(1, 2), size=7, mode="linear")
    residual = z - first
    r = F.interpolate(residual, size=3, mode="area").transpose(1, 2)
    assert torch.equal(out.ids[1], torch.cdist(r, book.expand(2, -1, -1)).argmin(-1))
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q, atol=1e-5, rtol=1e-5)
    assert split_scale_ids(flatten_scale_ids(out.ids), (1, 3, 7), spatial_dims=1)[2].shape == (2, 7)


def test_random_scale_drop_only_in_training_and_never_the_first():
    q = MultiScaleResidualQuantizer(Exact(2), scales=(1, 2, 3, 4), scale_drop_prob=1.0)
    z = torch.randn(1, 2, 4, 4)
    seen = set()
    for seed in range(20):
        out = q.train()(z, generator=torch.Generator().manual_seed(seed))
        assert len(out.ids) == 3 and out.scales[0] == 1
        seen |= {s for s in (2, 3, 4) if s not in out.scales}
    assert seen == {2, 3, 4}
    assert q.eval()(z).scales == (1, 2, 3, 4)
    never = MultiScaleResidualQuantizer(Exact(2), scales=(1, 2, 3, 4), scale_drop_prob=0.0).train()
    assert never(z).scales == (1, 2, 3, 4)


def test_phi_refines_each_scale_and_is_used_when_decoding():
    calls = []

    class Halve(nn.Module):
        def forward(self, x, k):
            calls.append(k)
            return 0.5 * x

    torch.manual_seed(3)
    q = MultiScaleResidualQuantizer(NearestCodebook(3, 8), scales=(1, 2), phi=Halve()).eval()
    z = torch.randn(1, 3, 2, 2)
    out = q(z)
    assert calls == [0, 1]
    book = q.quantizer.table.detach()
    c0 = 0.5 * F.interpolate(book[out.ids[0]].permute(0, 3, 1, 2), size=(2, 2), mode="bicubic")
    c1 = 0.5 * book[out.ids[1]].permute(0, 3, 1, 2)
    torch.testing.assert_close(out.z_q, c0 + c1)
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q)


def test_one_quantizer_per_scale():
    books = [NearestCodebook(4, 8, seed=s) for s in range(3)]
    q = MultiScaleResidualQuantizer(books, scales=(1, 2, 4)).eval()
    out = q(torch.randn(2, 4, 4, 4))
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q, atol=1e-5, rtol=1e-5)
    assert len(list(q.parameters())) == 3
    with pytest.raises(ValueError, match="got 2 per-scale quantizers for 3 scales"):
        MultiScaleResidualQuantizer(books[:2], scales=(1, 2, 4))


def test_gradients_reach_the_input_and_the_codebook():
    q = MultiScaleResidualQuantizer(NearestCodebook(4, 8), scales=(1, 2, 4)).train()
    z = torch.randn(2, 4, 4, 4, requires_grad=True)
    out = q(z)
    (out.z_q.square().mean() + out.loss).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert q.quantizer.table.grad.abs().sum() > 0


def test_next_scale_inputs_are_downsampled_running_sums():
    torch.manual_seed(4)
    q = MultiScaleResidualQuantizer(NearestCodebook(4, 16), scales=(1, 2, 4)).eval()
    ids = q(torch.randn(2, 4, 4, 4)).ids
    inputs = q.next_scale_inputs(ids)
    assert [tuple(x.shape) for x in inputs] == [(2, 4, 2, 2), (2, 4, 4, 4)]
    torch.testing.assert_close(inputs[0], F.interpolate(q.ids_to_codes(ids[:1]), size=(2, 2), mode="area"))
    torch.testing.assert_close(inputs[1], q.ids_to_codes(ids[:2]))


def test_split_and_flatten_scale_ids():
    ids = [torch.full((2, s, s), s) for s in (1, 2, 4)]
    flat = flatten_scale_ids(ids)
    assert flat.shape == (2, 21) and scale_token_counts((1, 2, 4)) == [1, 4, 16]
    back = split_scale_ids(flat, (1, 2, 4))
    assert all(torch.equal(a, b) for a, b in zip(ids, back))
    assert len(split_scale_ids(flat[:, :5], (1, 2, 4))) == 2
    with pytest.raises(TokError, match=r"x.tok: length 6 is not a sum of whole scales \(allowed lengths: 1, 5, 21\)"):
        split_scale_ids(flat[:, :6], (1, 2, 4), what="x.tok")


def test_bad_inputs_are_named():
    q = MultiScaleResidualQuantizer(Exact(2), scales=(1, 2, 4))
    with pytest.raises(ValueError, match=r"expected an input map of size \(4, 4\)"):
        q(torch.randn(1, 2, 5, 5))
    with pytest.raises(TokError, match=r"ids of scale 1 have shape \(3, 3\), expected \(2, 2\)"):
        q.ids_to_codes([torch.zeros(1, 1, 1, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match="scale .* is larger than the input map"):
        multi_scale_residual_quantize(torch.randn(1, 2, 2, 2), (1, 4), Exact(2))


def test_works_with_the_library_vq_adapter_on_token_sets():
    from tok.core.quantize import VQQuantizer

    torch.manual_seed(5)
    q = MultiScaleResidualQuantizer(VQQuantizer(8, 32), scales=(1, 2, 4, 8), spatial_dims=1).eval()
    z = torch.randn(3, 8, 8)
    out = q(z)
    assert [tuple(i.shape) for i in out.ids] == [(3, 1), (3, 2), (3, 4), (3, 8)]
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q, atol=1e-5, rtol=1e-5)
    assert q.vocab_size == 32
