import math

import pytest
import torch

from tok.core import TokenLayout, Tokens, TokError
from tok.metrics import codebook, shape


def test_chamfer_and_fscore_known_values():
    ref = torch.tensor([[0.0, 0, 0], [1, 0, 0]])
    rec = ref + torch.tensor([0.0, 0.1, 0])  # every point moved by 0.1
    assert shape.chamfer_distance(ref, rec) == pytest.approx(0.1)
    assert shape.chamfer_distance(ref, rec, norm="l2") == pytest.approx(0.01)
    assert shape.f_score(ref, rec, threshold=0.2) == pytest.approx(1.0)
    assert shape.f_score(ref, rec, threshold=0.05) == 0.0
    # One extra far point in the prediction: precision 2/3, recall 1 -> F = 0.8.
    rec3 = torch.cat([ref, torch.tensor([[5.0, 5, 5]])])
    assert shape.f_score(ref, rec3, threshold=0.01) == pytest.approx(0.8)
    # Chamfer-L1: accuracy (0 + 0 + d) / 3, completeness 0.
    d = math.dist((5, 5, 5), (1, 0, 0))
    assert shape.chamfer_distance(ref, rec3) == pytest.approx(0.5 * d / 3)


def test_chamfer_batched_and_chunked_equals_bruteforce():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 5000, 3, generator=g), torch.rand(2, 300, 3, generator=g)
    brute = 0.5 * (torch.cdist(b.double(), a.double()).amin(2).mean(1) + torch.cdist(a.double(), b.double()).amin(2).mean(1))
    assert shape.chamfer_distance(a, b) == pytest.approx(float(brute.mean()), rel=1e-12)


def test_volumetric_iou():
    a = torch.zeros(4, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[:2] = True  # 32 voxels
    b[1:3] = True  # 32 voxels, 16 shared
    assert shape.volumetric_iou(a, b) == pytest.approx(16 / 48)
    assert shape.volumetric_iou(a.float() * 0.9, b.float()) == pytest.approx(16 / 48)
    assert shape.volumetric_iou(torch.stack([a, a]), torch.stack([b, a])) == pytest.approx((16 / 48 + 1) / 2)
    assert shape.volumetric_iou(torch.zeros(3, 3, 3), torch.zeros(3, 3, 3)) == 1.0
    with pytest.raises(TokError, match="mismatched sizes"):
        shape.volumetric_iou(a, b[:2])


def test_shape_metrics_refuse_bad_input():
    with pytest.raises(TokError, match="empty point cloud"):
        shape.chamfer_distance(torch.zeros(0, 3), torch.zeros(4, 3))
    with pytest.raises(TokError, match=r"\(N, 3\)"):
        shape.f_score(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(TokError, match="NaN"):
        shape.chamfer_distance(torch.zeros(4, 3), torch.full((4, 3), float("nan")))


def _tokens(ids, vocab=8):
    layout = TokenLayout("sequence", (vocab,), (("n",),))
    return Tokens([torch.tensor(ids)], layout, "m")


def test_codebook_statistics_known_values():
    stats = codebook.CodebookStats()
    stats.update(_tokens([[0, 1, 2, 3]]))
    stats.update(_tokens([[0, 1, 2, 3]]))
    out = stats.compute()
    assert out["codebook_usage"] == 0.5
    assert out["entropy_bits"] == pytest.approx(2.0)  # uniform over 4 codes
    assert out["perplexity"] == pytest.approx(4.0)
    assert out["normalized_entropy"] == pytest.approx(2 / 3)
    assert out["tokens_per_input"] == 4 and out["bits_per_input"] == pytest.approx(12.0) and out["count"] == 2
    assert stats.histogram().tolist() == [2, 2, 2, 2, 0, 0, 0, 0]
    assert codebook.perplexity(_tokens([[5, 5, 5, 5]])) == pytest.approx(1.0)
    assert codebook.bits_per_pixel(_tokens([[0, 1, 2, 3]]), 4, 4) == pytest.approx(12 / 16)
    assert codebook.bits_per_second(_tokens([[0, 1, 2, 3]]), 2.0) == pytest.approx(6.0)
    with pytest.raises(TokError, match="vocabularies"):
        stats.update(_tokens([[0]], vocab=16))
    with pytest.raises(TokError, match="no tokens"):
        codebook.CodebookStats().compute()
