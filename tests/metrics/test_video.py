import pytest
import torch

from tok.core import TokError
from tok.metrics import fid as fidlib
from tok.metrics import image, video


def _clips(n=6, seed=0, noise=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 4, 20, 20, generator=g)
    return (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_fvd_is_the_frechet_distance_of_i3d_features(i3d_file):
    ref, rec = _clips(), _clips(noise=0.3)
    net = torch.jit.load(str(i3d_file))
    as_u8 = lambda v: (v * 255).round().to(torch.uint8)
    f_ref = net(as_u8(ref), rescale=True, resize=True, return_features=True).double()
    f_rec = net(as_u8(rec), rescale=True, resize=True, return_features=True).double()
    expected = fidlib.frechet_distance(fidlib.statistics(f_rec), fidlib.statistics(f_ref))
    got = video.fvd(ref, rec, weights=i3d_file, device="cpu")
    assert got == pytest.approx(expected, rel=1e-9) and got > 0
    assert abs(video.fvd(ref, ref, weights=i3d_file, device="cpu")) < 1e-6 * got


def test_fvd_bad_input(i3d_file, tmp_path, monkeypatch):
    with pytest.raises(TokError, match="at least 2 clips"):
        video.fvd(_clips(1), _clips(1), weights=i3d_file, device="cpu")
    with pytest.raises(TokError, match="different lengths"):
        video.fvd(_clips(), _clips()[:, :, :3], weights=i3d_file, device="cpu")
    with pytest.raises(TokError, match=r"\(B, 3, T, H, W\)"):
        video.fvd(torch.rand(2, 4, 3, 8, 8), torch.rand(2, 4, 3, 8, 8), weights=i3d_file)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(TokError, match=r"i3d_torchscript\.pt.*dropbox"):
        video.fvd(_clips(), _clips(), device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(TokError, match="not a TorchScript"):
        video.fvd(_clips(), _clips(), weights=tmp_path / "junk.pt", device="cpu")


def test_per_frame_psnr_ssim():
    ref, rec = _clips(2), _clips(2, noise=0.1)
    frames_ref = ref.transpose(1, 2).reshape(-1, 3, 20, 20)
    frames_rec = rec.transpose(1, 2).reshape(-1, 3, 20, 20)
    assert video.video_psnr(ref, rec) == pytest.approx(image.psnr(frames_ref, frames_rec))
    assert video.video_ssim(ref, rec) == pytest.approx(image.ssim(frames_ref, frames_rec))
    # Frame 0 of clip 1 is frame 4 of the flattened list.
    assert float(image.psnr_per_image(frames_ref, frames_rec)[4]) == pytest.approx(image.psnr(ref[1, :, 0], rec[1, :, 0]))
    with pytest.raises(TokError, match="mismatched sizes"):
        video.video_psnr(ref, rec[:, :, :3])
