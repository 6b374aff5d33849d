"""`tok eval` / `tok.evaluate` on a video tokenizer: a tiny random-weight OmniTokenizer on synthetic clips."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core import TokError
from tok.core.media import write_image, write_video
from tok.metrics import image, video
from tok.tokenizers.omnitokenizer import OmniTokenizer, preset


@pytest.fixture(scope="module")
def omni():
    torch.manual_seed(1)
    model = OmniTokenizer(preset("tiny"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        model.codebook.embeddings.copy_(torch.nn.functional.normalize(torch.randn_like(model.codebook.embeddings), dim=-1))
        model.codebook.z_avg.copy_(model.codebook.embeddings)
        model.codebook.N.fill_(1.0)
    model.codebook.need_init = False
    return model.eval()


def _clip(seed: int, frames: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 6, 6, generator=g).expand(frames, -1, -1, -1)
    return torch.nn.functional.interpolate(small, size=(64, 64), mode="bilinear") * torch.linspace(0.6, 1, frames).view(-1, 1, 1, 1)


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(3):
        write_video(_clip(i), folder / f"c{i}.mp4", fps=8)
    return folder


def test_video_run_per_frame_metrics_fvd_report_and_resume(omni, clips, tmp_path, i3d_file, monkeypatch):
    run = tmp_path / "run"
    mw = {"i3d": i3d_file, "device": "cpu"}
    summary = tok.evaluate(omni, clips, ["psnr", "ssim", "fvd", "codebook"], out=run, metric_weights=mw, batch_size=2)
    assert json.loads((run / "metrics.json").read_text()) == summary and summary["modality"] == "video"
    m = summary["metrics"]
    # Per-frame PSNR/SSIM recomputed by hand from the stored frames and the model's view of each original.
    refs, recs = [], []
    for i in range(3):
        item, _ = omni.read_media(clips / f"c{i}.mp4")
        refs.append(omni.postprocess(item[None])[0][:5])
        recs.append(torch.from_numpy(np.load(run / "recon" / f"c{i}.mp4.npy")).float() / 255)
        assert recs[-1].shape == (5, 3, 64, 64) and (run / "recon" / f"c{i}.mp4.mp4").is_file()
        assert m["psnr"]["per_item"][f"c{i}.mp4"] == pytest.approx(float(image.psnr_per_image(refs[-1], recs[-1]).mean()), abs=1e-9)
    assert m["psnr"]["value"] == pytest.approx(sum(m["psnr"]["per_item"].values()) / 3)
    assert m["ssim"]["value"] == pytest.approx(float(np.mean([image.ssim_per_image(r, c).mean() for r, c in zip(refs, recs)])), abs=1e-9)
    assert m["psnr"]["settings"]["frames"] == 15
    expected_fvd = video.fvd(torch.stack(refs).transpose(1, 2), torch.stack(recs).transpose(1, 2), weights=i3d_file, device="cpu")
    assert m["fvd"]["value"] == pytest.approx(expected_fvd, rel=1e-6) and m["fvd"]["value"] > 0
    assert m["fvd"]["settings"]["frames_per_clip"] == 5 and m["fvd"]["settings"]["weights"] == "i3d_torchscript.pt"
    assert 0 < m["codebook"]["value"] <= 1 and m["codebook"]["tokens_per_input"] == 2 * 8 * 8  # 5 frames: first frame + 4 -> 2 latent frames
    page = (run / "report.html").read_text()
    assert "(frames)" in page and page.count("<img") == 6 and "fvd" in page
    monkeypatch.setattr(omni, "decode", lambda *a, **k: pytest.fail("decoded again"))
    again = tok.evaluate(omni, clips, ["psnr", "ssim", "fvd", "codebook"], out=run, metric_weights=mw, batch_size=2)
    assert again["items_reconstructed_this_session"] == 0 and again["metrics"] == summary["metrics"]


def test_missing_i3d_weights_stop_before_decoding(omni, clips, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(omni, "decode", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(TokError, match=r"i3d_torchscript\.pt"):
        tok.evaluate(omni, clips, ["psnr", "fvd"], out=tmp_path / "run")
    assert not (tmp_path / "run" / "recon").exists()


def test_images_and_clips_mixed_and_the_cli(omni, tmp_path, i3d_file):
    from safetensors.torch import save_file

    folder = tmp_path / "mixed"
    folder.mkdir()
    write_video(_clip(0), folder / "a.mp4", fps=8)
    write_image(_clip(1)[0], folder / "b.png")
    (folder / "d").mkdir()  # a clip stored as a folder of frames, as the training corpus keeps them
    for i, frame in enumerate(_clip(2)):
        write_image(frame, folder / "d" / f"{i:02d}.png")
    weights = tmp_path / "omni.safetensors"
    save_file({k: v.contiguous() for k, v in omni.state_dict().items()}, str(weights))
    runner = CliRunner()
    base = ["eval", "--model", "omnitokenizer-tiny", "--weights", str(weights), "--data", str(folder), "--device", "cpu"]
    ok = runner.invoke(main, [*base, "--out", str(tmp_path / "run"), "--metrics", "psnr,ssim,codebook"])
    assert ok.exit_code == 0, ok.output
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(saved["metrics"]["psnr"]["per_item"]) == {"a.mp4", "b.png", "d"} and saved["metrics"]["psnr"]["settings"]["frames"] == 11
    assert np.load(tmp_path / "run" / "recon" / "d.npy").shape == (5, 3, 64, 64) and (tmp_path / "run" / "recon" / "d.mp4").is_file()
    assert (tmp_path / "run" / "recon" / "b.png.png").is_file()
    # FVD compares clips of one length: an image among videos is named as the cause.
    fvd = runner.invoke(main, [*base, "--out", str(tmp_path / "fvd"), "--metrics", "fvd", "--i3d-weights", str(i3d_file)])
    assert fvd.exit_code == 1 and "one length" in fvd.output and "[1, 5]" in fvd.output
    assert not (tmp_path / "fvd" / "metrics.json").exists()
