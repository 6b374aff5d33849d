import pytest
import torch

from tok.core import TokError
from tok.core.quantize import (
    FSQQuantizer,
    HierarchicalVQQuantizer,
    Quantizer,
    ResidualVQQuantizer,
    VQQuantizer,
)


def test_fsq_flextok_ids():
    q = FSQQuantizer((8, 8, 8, 5, 5, 5))
    assert q.vocab_size == 64000
    # The code at the lowest value of every level, then a single step in the 2nd dim (basis 8).
    low = torch.tensor([[[-1.0, -1.0, -1.0, -1.0, -1.0, -1.0]]])
    step = torch.tensor([[[-1.0, -0.75, -1.0, -1.0, -1.0, -1.0]]])
    assert q.fsq.codes_to_indices(low).item() == 0 and q.fsq.codes_to_indices(step).item() == 8
    z = torch.randn(2, 10, 6) * 3
    out = q(z)
    assert out.ids.dtype == torch.int64 and out.ids.shape == (2, 10)
    assert 0 <= out.ids.min() and out.ids.max() < 64000
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q)


def test_fsq_rejects_wrong_width():
    with pytest.raises(ValueError, match=r"expects channel-last latents \(B, ..., 6\)"):
        FSQQuantizer((8, 8, 8, 5, 5, 5))(torch.randn(2, 10, 5))


@pytest.mark.parametrize("shape", [(2, 7, 16), (2, 3, 4, 16)])
def test_vq_round_trip_in_eval(shape):
    q = VQQuantizer(16, 32).eval()
    out = q(torch.randn(shape))
    assert out.ids.shape == shape[:-1] and out.ids.max() < 32
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q)


def test_residual_vq_codebooks_layout():
    q = ResidualVQQuantizer(16, num_quantizers=4, codebook_size=32).eval()
    out = q(torch.randn(2, 9, 16))
    assert out.ids.shape == (2, 4, 9)  # (B, Q, T) like the `codebooks` layout
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q)
    with pytest.raises(ValueError, match=r"expected ids \(B, 4, ...\)"):
        q.ids_to_codes(out.ids[:, :2])


def test_hierarchical_vq_scales():
    q = HierarchicalVQQuantizer(8, 64, scales=(1, 2, 4), kmeans_init=False).eval()
    out = q(torch.randn(2, 4, 4, 8))
    assert [tuple(i.shape) for i in out.ids] == [(2, 1, 1), (2, 2, 2), (2, 4, 4)]
    torch.testing.assert_close(q.ids_to_codes(out.ids), out.z_q, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("levels", [(8, 5, 5), (3, 4), (8, 8, 8, 5, 5, 5)])
@pytest.mark.parametrize("k", [1, 5, 13])
def test_fsq_lattice_neighbours_equal_the_brute_force_search(levels, k):
    q = FSQQuantizer(levels)
    k = min(k, q.vocab_size - 1)
    g = torch.Generator().manual_seed(k)
    ids = torch.randint(0, q.vocab_size, (3, 40), generator=g)
    ids[0, :2] = torch.tensor([0, q.vocab_size - 1])  # lattice corners
    fast = q.neighbours(ids, k)
    assert fast.shape == (3, 40, k)
    assert torch.equal(fast[..., 0], ids)  # the code itself comes first
    assert torch.equal(fast, Quantizer.neighbours(q, ids, k))
    # Nearest first: distances never decrease along the last axis.
    codes = q.ids_to_codes(fast.reshape(1, -1)).reshape(*fast.shape, len(levels))
    d = (codes - codes[..., :1, :]).norm(dim=-1)
    assert (d.diff(dim=-1) >= -1e-6).all()


def test_vq_neighbours_are_nearest_codebook_entries():
    q = VQQuantizer(4, 16).eval()
    ids = torch.arange(16)[None]
    nb = q.neighbours(ids, 3)
    codebook = q.codebook()
    expected = torch.cdist(codebook, codebook).argsort(dim=1)[:, :3]
    assert torch.equal(nb[0], expected)
    with pytest.raises(TokError, match="1..16"):
        q.neighbours(ids, 17)
