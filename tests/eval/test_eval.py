import json

import pytest
import torch
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core import TokError
from tok.core.media import read_image, write_image
from tok.metrics import image


@pytest.fixture
def photos(tmp_path):
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        ramp = torch.linspace(0, 1, 80).view(1, 1, 80) * torch.rand(3, 1, 1, generator=g)
        write_image((ramp + 0.2 * torch.rand(3, 72, 80, generator=g)).clamp(0, 1), folder / f"img{i}.png")
    return folder


def _model(weights):
    return tok.load("flextok-tiny", weights=weights, device="cpu")


def test_evaluate_writes_metrics_report_and_resumes(photos, tmp_path, tiny_flextok_weights, inception_weights):
    model = _model(tiny_flextok_weights)
    run = tmp_path / "run"
    mw = {"inception": inception_weights, "device": "cpu", "fid_layer": "64"}
    summary = tok.evaluate(model, photos, ["psnr", "ssim", "codebook", "rfid", "pfid"], out=run, metric_weights=mw, batch_size=2)
    assert json.loads((run / "metrics.json").read_text()) == summary
    assert summary["dataset"]["count"] == 3 and len(summary["dataset"]["digest"]) == 16
    assert summary["weights_digest"] == model.weights_digest and summary["items_reconstructed_this_session"] == 3
    m = summary["metrics"]
    # PSNR recomputed by hand from the stored reconstructions and the model's view of the originals.
    refs = torch.cat([model.postprocess(model.preprocess(read_image(p)[0])) for p in sorted(photos.iterdir())])
    recs = torch.stack([read_image(run / "recon" / f"{p.name}.png")[0] for p in sorted(photos.iterdir())])
    assert m["psnr"]["value"] == pytest.approx(image.psnr(refs, recs), abs=1e-9)
    assert m["ssim"]["value"] == pytest.approx(image.ssim(refs, recs), abs=1e-9)
    assert m["psnr"]["count"] == 3 and m["psnr"]["settings"]["data_range"] == 1.0
    assert m["codebook"]["tokens_per_input"] == 16 and 0 < m["codebook"]["value"] <= 1
    assert m["rfid"]["settings"]["weights_digest"] and m["pfid"]["settings"]["alpha"] == 0.5
    assert m["rfid"]["value"] > 0 and m["pfid"]["value"] > 0
    page = (run / "report.html").read_text()
    assert page.count("<img") == 9 and "<svg" in page and "rfid" in page
    # Resuming a finished run redoes nothing and gives the same numbers.
    again = tok.evaluate(model, photos, ["psnr", "ssim", "codebook", "rfid", "pfid"], out=run, metric_weights=mw, batch_size=2)
    assert again["items_reconstructed_this_session"] == 0 and again["metrics"] == summary["metrics"]
    # Other settings in the same folder are refused.
    with pytest.raises(TokError, match="other num_tokens"):
        tok.evaluate(model, photos, ["psnr"], out=run, num_tokens=4)
    with pytest.raises(TokError, match="other cpu_bf16"):
        tok.evaluate(model, photos, ["psnr"], out=run, cpu_bf16=True)
    model.cpu_bf16 = False
    with pytest.raises(TokError, match="other cpu_int8"):
        tok.evaluate(model, photos, ["psnr"], out=run, cpu_int8=True)
    model.cpu_int8 = False
    assert summary["options"]["cpu_bf16"] is False and summary["options"]["cpu_int8"] is False


def test_cpu_bf16_runs_are_recorded_and_refused_for_families_without_it(photos, tmp_path, tiny_flextok_weights):
    summary = tok.evaluate(_model(tiny_flextok_weights), photos, ["psnr"], out=tmp_path / "bf16", cpu_bf16=True)
    assert summary["options"]["cpu_bf16"] is True
    assert json.loads((tmp_path / "bf16" / "run.json").read_text())["cpu_bf16"] is True
    result = CliRunner().invoke(main, ["eval", "--model", "hieratok-small", "--data", str(photos), "--out", str(tmp_path / "h"), "--cpu-bf16"])
    assert result.exit_code == 1 and "has no bf16 CPU inference path" in result.output, result.output


def test_cpu_int8_runs_are_recorded(photos, tmp_path, tiny_flextok_weights):
    result = CliRunner().invoke(main, ["eval", "--model", "flextok-tiny", "--weights", str(tiny_flextok_weights), "--data", str(photos),
                                       "--out", str(tmp_path / "int8"), "--metrics", "psnr", "--steps", "1", "--cpu-int8"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "int8" / "run.json").read_text())["cpu_int8"] is True
    assert json.loads((tmp_path / "int8" / "metrics.json").read_text())["options"]["cpu_int8"] is True


def test_cpu_winograd_encoder_runs_are_recorded_and_a_resume_must_match(photos, tmp_path, tiny_flextok_weights):
    args = ["eval", "--model", "flextok-tiny", "--weights", str(tiny_flextok_weights), "--data", str(photos),
            "--out", str(tmp_path / "w"), "--metrics", "psnr", "--steps", "1"]
    result = CliRunner().invoke(main, [*args, "--cpu-winograd-encoder"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "w" / "run.json").read_text())["cpu_winograd_encoder"] is True
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["options"]["cpu_winograd_encoder"] is True
    result = CliRunner().invoke(main, args)  # the same folder with the direct encoder
    assert result.exit_code == 1 and "holds a run with other cpu_winograd_encoder" in result.output, result.output


def test_interrupted_run_resumes_without_redoing_items(photos, tmp_path, tiny_flextok_weights, monkeypatch):
    model = _model(tiny_flextok_weights)
    run = tmp_path / "run"
    calls = {"n": 0}
    decode = model.decode

    def failing_decode(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return decode(*args, **kwargs)

    monkeypatch.setattr(model, "decode", failing_decode)
    with pytest.raises(KeyboardInterrupt):
        tok.evaluate(model, photos, ["psnr"], out=run, batch_size=2)
    assert not (run / "metrics.json").exists()
    assert len(list((run / "recon").glob("*.png"))) == 2 and not list((run / "recon").glob(".*"))
    monkeypatch.setattr(model, "decode", decode)
    summary = tok.evaluate(model, photos, ["psnr"], out=run, batch_size=2)
    assert summary["items_reconstructed_this_session"] == 1 and summary["metrics"]["psnr"]["count"] == 3


def test_nan_reconstructions_and_bad_metrics_are_clear_errors(photos, tmp_path, tiny_flextok_weights, monkeypatch):
    model = _model(tiny_flextok_weights)
    monkeypatch.setattr(model, "decode", lambda tokens, **kw: torch.full((len(tokens), 3, 64, 64), float("nan")))
    with pytest.raises(TokError, match=r"NaN.*img0\.png"):
        tok.evaluate(model, photos, ["psnr"], out=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.json").exists()
    with pytest.raises(TokError, match="unknown metric"):
        tok.evaluate(model, photos, ["psnr", "bleu"])
    monkeypatch.undo()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(TokError, match=r"weights-inception-2015-12-05-6726825d\.pth"):
        tok.evaluate(_model(tiny_flextok_weights), photos, ["psnr", "rfid"], out=tmp_path / "nofid")
    assert not (tmp_path / "nofid" / "recon").exists()  # refused before decoding anything
    with pytest.raises(TokError, match="at least 2 images"):
        tok.evaluate(_model(tiny_flextok_weights), photos, ["rfid"], limit=1, out=tmp_path / "one")
    assert not (tmp_path / "one").exists()  # refused before any work


def test_cli_eval_and_compare(photos, tmp_path, tiny_flextok_weights):
    runner = CliRunner()
    base = ["eval", "--model", "flextok-tiny", "--weights", str(tiny_flextok_weights), "--data", str(photos), "--device", "cpu"]
    import torchvision

    squeeze = tmp_path / "squeezenet1_1-b8a52dc0.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), squeeze)
    lpips_opts = ["--lpips-net", "squeeze", "--lpips-weights", str(squeeze)]
    first = runner.invoke(main, [*base, "--out", str(tmp_path / "a"), "--metrics", "psnr,codebook,lpips", *lpips_opts])
    assert first.exit_code == 0, first.output
    assert "psnr" in first.output and (tmp_path / "a" / "metrics.json").is_file()
    lpips = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]["lpips"]
    assert lpips["value"] > 0 and lpips["settings"]["net"] == "squeeze" and lpips["settings"]["backbone"] == squeeze.name
    second = runner.invoke(main, [*base, "--out", str(tmp_path / "b"), "--metrics", "psnr,ssim", "--tokens", "4"])
    assert second.exit_code == 0, second.output
    table = runner.invoke(main, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    psnr_a = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]["psnr"]["value"]
    assert any(line.startswith("psnr") and f"{psnr_a:.4f}" in line for line in lines)
    assert any(line.startswith("ssim") and "-" in line for line in lines)
    missing = runner.invoke(main, ["eval", "compare", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no metrics.json" in missing.output
    usage = runner.invoke(main, ["eval", "--model", "flextok-tiny"])
    assert usage.exit_code == 2 and "--data" in usage.output


def test_cli_fid_and_statistics(tmp_path, inception_weights):
    runner = CliRunner()
    g = torch.Generator().manual_seed(1)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            write_image(torch.rand(3, 24, 24, generator=g), tmp_path / name / f"{i}.png")
    w = ["--inception-weights", str(inception_weights), "--device", "cpu", "--layer", "64"]
    stats = runner.invoke(main, ["eval", "stats", str(tmp_path / "b"), str(tmp_path / "b.npz"), *w])
    assert stats.exit_code == 0, stats.output
    direct = runner.invoke(main, ["eval", "fid", str(tmp_path / "a"), str(tmp_path / "b"), *w])
    via_stats = runner.invoke(main, ["eval", "fid", str(tmp_path / "a"), str(tmp_path / "b.npz"), *w])
    assert direct.exit_code == 0 and via_stats.exit_code == 0, direct.output + via_stats.output
    first = float(direct.output.split()[1])
    assert first > 0 and abs(float(via_stats.output.split()[1]) - first) < 1e-6 * max(1.0, first)
    bad = runner.invoke(main, ["eval", "fid", str(tmp_path / "a"), str(tmp_path / "nope"), *w])
    assert bad.exit_code == 1 and "nope" in bad.output


def test_cli_audio_pairs(tmp_path):
    import math

    import pesq as pesq_pkg
    import soundfile

    t = torch.arange(48000) / 16000
    voiced = sum(torch.sin(2 * math.pi * 130 * k * t) / k for k in range(1, 10))
    clean = (0.3 * voiced * torch.clamp(torch.sin(2 * math.pi * t), min=0) ** 2).numpy()
    noisy = clean + 0.02 * torch.randn(48000, generator=torch.Generator().manual_seed(0)).numpy()
    (tmp_path / "ref").mkdir()
    (tmp_path / "rec").mkdir()
    soundfile.write(tmp_path / "ref" / "a.wav", clean, 16000, subtype="FLOAT")
    soundfile.write(tmp_path / "rec" / "a.wav", noisy[:47800], 16000, subtype="FLOAT")  # codec padding trimmed
    runner = CliRunner()
    out = runner.invoke(main, ["eval", "audio", str(tmp_path / "ref"), str(tmp_path / "rec"), "--metrics", "pesq,stoi,sisdr", "--out", str(tmp_path / "a.json")])
    assert out.exit_code == 0, out.output
    result = json.loads((tmp_path / "a.json").read_text())
    expected = pesq_pkg.pesq(16000, clean[:47800].astype("float32"), noisy[:47800].astype("float32"), "wb")
    assert result["metrics"]["pesq"]["value"] == pytest.approx(expected, abs=1e-6)
    assert result["count"] == 1 and 0 < result["metrics"]["stoi"]["value"] <= 1
    soundfile.write(tmp_path / "rec" / "a.wav", noisy[:30000], 16000)
    short = runner.invoke(main, ["eval", "audio", str(tmp_path / "ref"), str(tmp_path / "rec")])
    assert short.exit_code == 1 and "more than 5% apart" in short.output
    (tmp_path / "rec" / "a.wav").unlink()
    missing = runner.invoke(main, ["eval", "audio", str(tmp_path / "ref"), str(tmp_path / "rec")])
    assert missing.exit_code == 1 and "no reconstruction of a.wav" in missing.output


def test_audio_utmos_scores_every_reconstruction(tmp_path, monkeypatch):
    import soundfile

    import tok.metrics.utmos as utmos_module
    from tok.eval.audio import evaluate_audio
    from tok.metrics.utmos import UTMOS, UTMOS22Strong, Wav2Vec2Config

    small = UTMOS22Strong(Wav2Vec2Config(dim=32, layers=1, heads=2, ffn_dim=32, conv_dim=16, pos_kernel=8, pos_groups=2)).eval()
    monkeypatch.setattr(utmos_module, "UTMOS", lambda weights=None: UTMOS(model=small, device="cpu"))
    (tmp_path / "ref").mkdir()
    (tmp_path / "rec").mkdir()
    g = torch.Generator().manual_seed(0)
    clips = {}
    for name, n in (("a.wav", 8000), ("b.wav", 12000)):
        clip = (0.1 * torch.randn(n, generator=g)).numpy()
        soundfile.write(tmp_path / "ref" / name, clip, 16000, subtype="FLOAT")
        soundfile.write(tmp_path / "rec" / name, clip * 0.5, 16000, subtype="FLOAT")
        clips[name] = torch.from_numpy(clip * 0.5).float()
    result = evaluate_audio(tmp_path / "ref", tmp_path / "rec", ["utmos", "sisdr"])
    expected = torch.stack([small(c[None])[0] for c in clips.values()]).double().mean()
    assert result["metrics"]["utmos"]["value"] == pytest.approx(float(expected), abs=1e-4)
    assert result["metrics"]["utmos"]["count"] == 2 and result["metrics"]["sisdr"]["value"] > 100
