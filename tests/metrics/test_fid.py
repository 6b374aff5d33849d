import numpy as np
import pytest
import torch

from tok.core import TokError
from tok.metrics import fid as fidlib


def _sets(n=6, size=32, noise=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, 1, generator=g) * torch.linspace(0, 1, size).view(1, 1, 1, size)
    base = (base + 0.3 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)
    recon = (base + noise * torch.randn(base.shape, generator=g)).clamp(0, 1)
    return base, recon


@pytest.mark.slow
def test_rfid_equals_torch_fidelity_calculate_metrics(tmp_path, inception_weights, write_images):
    import torch_fidelity

    ref, rec = _sets()
    d1, d2 = write_images(tmp_path / "ref", ref), write_images(tmp_path / "rec", rec)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(d2), input2=str(d1), fid=True, cuda=False, batch_size=4, verbose=False, cache=False,
        save_cpu_ram=True, feature_extractor_weights_path=str(inception_weights),
    )["frechet_inception_distance"]
    ours = fidlib.rfid(d1, d2, weights=inception_weights, batch_size=4, device="cpu")
    assert theirs > 0
    assert ours == pytest.approx(theirs, abs=1e-4)


def test_in_memory_images_give_the_features_of_their_pngs(tmp_path, inception_weights, write_images):
    _, rec = _sets(4)
    folder = write_images(tmp_path / "rec", rec)
    from_files = fidlib.features_of(folder, ("64",), weights=inception_weights, device="cpu").features()
    in_memory = fidlib.features_of(rec, ("64",), weights=inception_weights, device="cpu").features()
    assert torch.equal(from_files, in_memory)


def test_fid_small_layer_properties_and_statistics_files(tmp_path, inception_weights):
    ref, rec = _sets(8)
    opts = {"weights": inception_weights, "device": "cpu", "layer": "64"}
    near = fidlib.fid(ref, _sets(8, noise=0.02)[1], **opts)
    far = fidlib.fid(ref, rec, **opts)
    assert 0 < near < far
    assert abs(fidlib.fid(ref, ref, **opts)) < 1e-5 * far  # round-off of a rank-deficient covariance
    # gFID against precomputed statistics equals gFID against the images.
    stats = fidlib.statistics(fidlib.features_of(ref, ("64",), weights=inception_weights, device="cpu").features())
    np.savez(tmp_path / "ref.npz", **stats)
    assert fidlib.gfid(rec, tmp_path / "ref.npz", **opts) == pytest.approx(far, abs=1e-6)
    with pytest.raises(TokError, match="mu"):
        np.savez(tmp_path / "bad.npz", x=np.zeros(3))
        fidlib.gfid(rec, tmp_path / "bad.npz", **opts)


def test_kid_and_inception_score_equal_torch_fidelity(inception_weights):
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    ref, rec = _sets(10)
    opts = {"weights": inception_weights, "device": "cpu"}
    f_ref = fidlib.features_of(ref, ("64",), **opts).features()
    f_rec = fidlib.features_of(rec, ("64",), **opts).features()
    mean, std = fidlib.kid(ref, rec, subsets=5, layer="64", **opts)
    expected = kid_features_to_metric(f_ref, f_rec, kid_subsets=5, kid_subset_size=10, rng_seed=2020, verbose=False)
    assert mean == pytest.approx(expected["kernel_inception_distance_mean"]) and std == pytest.approx(expected["kernel_inception_distance_std"])
    logits = fidlib.features_of(rec[:4], ("logits_unbiased",), **opts).features()
    is_mean, _ = fidlib.inception_score(rec[:4], splits=2, **opts)
    assert is_mean == pytest.approx(isc_features_to_metric(logits, splits=2)["inception_score_mean"])
    assert is_mean >= 1.0


def test_fid_bad_input(tmp_path, inception_weights, monkeypatch):
    ref, rec = _sets(3)
    opts = {"weights": inception_weights, "device": "cpu", "layer": "64"}
    with pytest.raises(TokError, match="at least 2 images"):
        fidlib.fid(ref[:1], rec, **opts)
    with pytest.raises(TokError, match="unequal set sizes"):
        fidlib.rfid(ref, rec[:2], **opts)
    bad = rec.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(TokError, match="NaN"):
        fidlib.fid(ref, bad, **opts)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv("TOK_METRIC_WEIGHTS", raising=False)
    with pytest.raises(TokError, match=r"weights-inception-2015-12-05-6726825d\.pth.*github\.com/toshas/torch-fidelity"):
        fidlib.fid(ref, rec, device="cpu", layer="64")
    # Weights found in the torch hub cache without an explicit path.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / inception_weights.name).write_bytes(inception_weights.read_bytes())
    assert fidlib.fid(ref, rec, device="cpu", layer="64") == pytest.approx(fidlib.fid(ref, rec, **opts))
    # A pickle with code in it is refused before torch-fidelity unpickles it.
    evil = tmp_path / "evil.pth"
    torch.save({"x": torch.nn.ReLU()}, evil)
    with pytest.raises(TokError, match="safely"):
        fidlib.fid(ref, rec, weights=evil, device="cpu")
