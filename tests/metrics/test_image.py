import numpy as np
import pytest
import torch

from tok.core import TokError
from tok.metrics import image
from tok.metrics.weights import LPIPS_BACKBONES

skimage_metrics = pytest.importorskip("skimage.metrics")


def _pair(seed=0, shape=(2, 3, 24, 31), noise=0.1):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    return a, (a + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)


def test_psnr_matches_skimage_and_known_value():
    a, b = _pair()
    expected = np.mean([skimage_metrics.peak_signal_noise_ratio(a[i].numpy(), b[i].numpy(), data_range=1.0) for i in range(2)])
    assert image.psnr(a, b) == pytest.approx(expected, abs=1e-10)
    # MSE 0.01 everywhere -> 20 dB exactly.
    assert image.psnr(torch.zeros(3, 8, 8), torch.full((3, 8, 8), 0.1)) == pytest.approx(20.0, abs=1e-6)
    assert image.psnr(a, a) == float("inf")


def test_thumbnail_baseline_sizes_by_bits_and_keeps_smooth_images():
    """The side is the smallest s with 24 s^2 >= bits; a flat colour survives up to 8-bit rounding;
    a finer thumbnail of a detailed image is closer."""
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert image.thumbnail_baseline(flat, 24)[0] == 1 and image.thumbnail_baseline(flat, 25)[0] == 2
    assert image.thumbnail_baseline(flat, 1022)[0] == 7 and image.thumbnail_baseline(flat, 4087)[0] == 14
    side, score = image.thumbnail_baseline(flat, 24)
    assert score.shape == (1,) and score.item() == pytest.approx(10 * np.log10(1 / (0.3 - round(0.3 * 255) / 255) ** 2), abs=1e-3)
    detailed = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert (image.thumbnail_baseline(detailed, 24 * 16**2)[1] > image.thumbnail_baseline(detailed, 24 * 4**2)[1]).all()


@pytest.mark.parametrize("opts", [{}, {"data_range": 2.0}, {"gaussian": True}])
def test_ssim_matches_skimage(opts):
    a, b = _pair(1)
    sk = {"channel_axis": -1, "data_range": opts.get("data_range", 1.0)}
    if opts.get("gaussian"):
        sk.update(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    expected = np.mean(
        [skimage_metrics.structural_similarity(a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy(), **sk) for i in range(2)]
    )
    assert image.ssim(a, b, **opts) == pytest.approx(expected, abs=1e-10)
    assert image.ssim(a, a) == pytest.approx(1.0)


def test_image_metrics_refuse_bad_input():
    a, b = _pair()
    with pytest.raises(TokError, match="mismatched sizes"):
        image.psnr(a, b[..., :20])
    with pytest.raises(TokError, match="unequal set sizes"):
        image.ssim(a, b[:1])
    bad = b.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(TokError, match="NaN"):
        image.psnr(a, bad)
    with pytest.raises(TokError, match="at least 7x7"):
        image.ssim(torch.rand(3, 5, 5), torch.rand(3, 5, 5))


def _random_alexnet_file(folder):
    import torchvision

    torch.manual_seed(3)
    path = folder / LPIPS_BACKBONES["alex"].filename
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def test_lpips_equals_the_lpips_package_on_the_same_backbone(tmp_path, monkeypatch):
    import lpips

    path = _random_alexnet_file(tmp_path)
    ours = image.LPIPS("alex", backbone_weights=path)
    # The package, fed the same file through torch hub's cache (no download: the file exists).
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    path.rename(tmp_path / "hub" / "checkpoints" / path.name)
    reference = lpips.LPIPS(net="alex", verbose=False).eval()
    a, b = _pair(2, (2, 3, 64, 64), noise=0.2)
    expected = reference(b.float(), a.float(), normalize=True).flatten().double()
    got = ours.per_image(a, b)
    assert torch.allclose(got, expected, atol=1e-6)
    assert got.min() > 0
    # Found in the hub cache without an explicit path as well.
    assert image.LPIPS("alex").per_image(a, b).allclose(got)


def test_lpips_missing_backbone_names_file_and_origin(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(TokError, match=r"alexnet-owt-7be5be79\.pth.*download\.pytorch\.org"):
        image.LPIPS("alex")
    with pytest.raises(TokError, match="does not exist"):
        image.LPIPS("alex", backbone_weights=tmp_path / "nope.pth")
