"""`tok eval` / `tok.evaluate` on an audio codec: a tiny random-weight WavTokenizer on synthetic clips."""

import json
import math

import pytest
import soundfile
import torch
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.codecs.wavtokenizer import WavTokenizer, preset
from tok.metrics import audio as A


def speech_like(seconds: float, rate: int, seed: int) -> torch.Tensor:
    """Voiced bursts with pauses: enough like speech for PESQ's utterance detection and STOI."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    phase = 2 * math.pi * torch.cumsum(120 + 30 * torch.sin(2 * math.pi * 0.7 * t), 0) / rate
    voiced = sum(torch.sin(k * phase) / k for k in range(1, 12))
    envelope = torch.clamp(torch.sin(2 * math.pi * 1.5 * t), min=0) ** 2
    return (0.3 * voiced * envelope + 0.01 * torch.randn(t.shape, generator=g, dtype=torch.float64)).float()


def random_wavtokenizer() -> WavTokenizer:
    torch.manual_seed(0)
    model = WavTokenizer(preset("tiny"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("gamma", "shift.weight")):
                p.normal_(0, 0.1)
        codebook = model.quantizer.vq._codebook
        codebook.embed.normal_(0, 0.05)
        codebook.embed_avg.copy_(codebook.embed)
        codebook.cluster_size.fill_(3.0)
        codebook.initted.fill_(True)
    return model.eval()


@pytest.fixture
def clips(tmp_path):
    """Clips at the model's rate and at another, of lengths that are not whole frames, plus silence."""
    folder = tmp_path / "clips"
    folder.mkdir()
    soundfile.write(folder / "a.wav", speech_like(1.5, 24000, 0).numpy(), 24000, subtype="FLOAT")
    soundfile.write(folder / "b.wav", speech_like(1.3, 16000, 1).numpy()[:20_777], 16000, subtype="PCM_16")
    soundfile.write(folder / "quiet.wav", torch.zeros(12_345).numpy(), 24000, subtype="PCM_16")
    return folder


def test_audio_run_writes_exact_length_wavs_per_item_metrics_and_resumes(clips, tmp_path, monkeypatch):
    model = random_wavtokenizer()
    run = tmp_path / "run"
    names = ["pesq", "stoi", "mel", "sisdr", "codebook"]
    summary = tok.evaluate(model, clips, names, out=run, batch_size=2)
    assert json.loads((run / "metrics.json").read_text()) == summary
    assert summary["modality"] == "audio" and summary["dataset"]["count"] == 3
    for name, rate, length in (("a.wav", 24000, 36000), ("b.wav", 16000, 20_777), ("quiet.wav", 24000, 12_345)):
        info = soundfile.info(run / "recon" / f"{name}.wav")
        assert (info.samplerate, info.frames) == (rate, length)
    m = summary["metrics"]
    # The silent clip cannot be scored by PESQ, STOI or SI-SDR: listed, never averaged in.
    for name in ("pesq", "stoi", "sisdr"):
        assert m[name]["count"] == 2 and [f["item"] for f in m[name]["failed"]] == ["quiet.wav"], m[name]
        assert set(m[name]["per_item"]) == {"a.wav", "b.wav"}
        assert m[name]["value"] == pytest.approx(sum(m[name]["per_item"].values()) / 2)
    assert "silent" in m["pesq"]["failed"][0]["error"]
    assert m["mel"]["count"] == 3 and not m["mel"]["failed"]
    # Per-item values are the metric functions' own on the stored files.
    ref, _ = soundfile.read(clips / "b.wav", dtype="float32")
    rec, _ = soundfile.read(run / "recon" / "b.wav.wav", dtype="float32")
    assert m["pesq"]["per_item"]["b.wav"] == pytest.approx(A.pesq(torch.from_numpy(ref), torch.from_numpy(rec), 16000), abs=1e-9)
    assert m["sisdr"]["per_item"]["b.wav"] == pytest.approx(A.si_sdr(torch.from_numpy(ref), torch.from_numpy(rec)), abs=1e-6)
    # Codebook statistics count each clip's own frames, not the batch's padding.
    frames = [math.ceil(36000 / 32), math.ceil(20_777 * 1.5 / 32), math.ceil(12_345 / 32)]
    assert m["codebook"]["tokens_per_input"] == pytest.approx(sum(frames) / 3)
    assert m["codebook"]["bits_per_second"] == pytest.approx(sum(frames) * 6 / (1.5 + 20_777 / 16000 + 12_345 / 24000))
    page = (run / "report.html").read_text()
    assert "spectrograms" in page and page.count("<img") == 6 and "<svg" in page
    # Resuming a finished run decodes nothing and gives the same numbers.
    monkeypatch.setattr(model, "decode", lambda *a, **k: pytest.fail("decoded again"))
    again = tok.evaluate(model, clips, names, out=run, batch_size=2)
    assert again["items_reconstructed_this_session"] == 0 and again["metrics"] == summary["metrics"]


def test_interrupted_audio_run_resumes_and_batches_like_single_items(clips, tmp_path, monkeypatch):
    model = random_wavtokenizer()
    alone = tok.evaluate(model, clips, ["sisdr", "mel"], out=tmp_path / "alone", batch_size=1)
    decode, calls = model.decode, {"n": 0}

    def failing_decode(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return decode(*args, **kwargs)

    monkeypatch.setattr(model, "decode", failing_decode)
    with pytest.raises(KeyboardInterrupt):
        tok.evaluate(model, clips, ["sisdr", "mel"], out=tmp_path / "run", batch_size=1)
    assert not (tmp_path / "run" / "metrics.json").exists() and len(list((tmp_path / "run" / "tokens").glob("*.tok"))) == 1
    monkeypatch.setattr(model, "decode", decode)
    resumed = tok.evaluate(model, clips, ["sisdr", "mel"], out=tmp_path / "run", batch_size=3)
    assert resumed["items_reconstructed_this_session"] == 2
    for name in ("sisdr", "mel"):
        for item, value in alone["metrics"][name]["per_item"].items():
            assert resumed["metrics"][name]["per_item"][item] == pytest.approx(value, abs=2e-3), (name, item)


def test_cli_audio_eval_and_bad_metric(clips, tmp_path):
    from safetensors.torch import save_file

    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in random_wavtokenizer().state_dict().items()}, str(weights))
    runner = CliRunner()
    base = ["eval", "--model", "wavtokenizer-tiny", "--weights", str(weights), "--data", str(clips), "--device", "cpu"]
    result = runner.invoke(main, [*base, "--out", str(tmp_path / "run"), "--metrics", "stoi,pesq,mel,sisdr,codebook"])
    assert result.exit_code == 0, result.output
    assert "pesq" in result.output and (tmp_path / "run" / "report.html").is_file()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["metrics"]["pesq"]["failed"][0]["item"] == "quiet.wav"
    default = runner.invoke(main, [*base, "--out", str(tmp_path / "default")])
    assert default.exit_code == 0, default.output
    assert set(json.loads((tmp_path / "default" / "metrics.json").read_text())["metrics"]) == {"stoi", "mel", "sisdr", "codebook"}
    bad = runner.invoke(main, [*base, "--out", str(tmp_path / "bad"), "--metrics", "psnr"])
    assert bad.exit_code == 1 and "unknown metric(s) psnr for audio models" in bad.output


def test_a_codec_writing_its_own_rate_is_brought_to_the_originals(clips, tmp_path, monkeypatch):
    """A codec whose write_media keeps its own rate (as XY-Tokenizer once did): the run resamples
    each reconstruction to its original's rate and length."""
    from tok.core.media import write_audio

    model = random_wavtokenizer()
    monkeypatch.setattr(model, "write_media", lambda item, path, source=None: write_audio(item.reshape(-1)[: source["num_samples"]], path, 24000))
    summary = tok.evaluate(model, clips, ["sisdr", "mel", "codebook"], out=tmp_path / "run", batch_size=3)
    for name, rate, length in (("a.wav", 24000, 36000), ("b.wav", 16000, 20_777), ("quiet.wav", 24000, 12_345)):
        info = soundfile.info(tmp_path / "run" / "recon" / f"{name}.wav")
        assert (info.samplerate, info.frames) == (rate, length)
    assert summary["metrics"]["mel"]["count"] == 3 and summary["metrics"]["codebook"]["count"] == 3


def test_utmos_of_every_reconstruction_and_missing_weights(clips, tmp_path, monkeypatch):
    import tok.metrics.utmos as utmos_module
    from tok.core.media import read_audio
    from tok.metrics.utmos import UTMOS, UTMOS22Strong, Wav2Vec2Config

    small = UTMOS22Strong(Wav2Vec2Config(dim=32, layers=1, heads=2, ffn_dim=32, conv_dim=16, pos_kernel=8, pos_groups=2)).eval()
    monkeypatch.setattr(utmos_module, "UTMOS", lambda weights=None, device=None: UTMOS(model=small, device="cpu"))
    model = random_wavtokenizer()
    weights = tmp_path / "utmos22_strong_step7459_v1.pt"
    weights.write_bytes(b"stand-in: the scorer is replaced above")
    summary = tok.evaluate(model, clips, ["utmos", "sisdr"], out=tmp_path / "run", metric_weights={"utmos": weights}, batch_size=3)
    u = summary["metrics"]["utmos"]
    assert u["count"] == 3 and set(u["per_item"]) == {"a.wav", "b.wav", "quiet.wav"}
    alone = UTMOS(model=small, device="cpu")
    for name in ("a.wav", "b.wav"):
        wave, info = read_audio(tmp_path / "run" / "recon" / f"{name}.wav")
        assert u["per_item"][name] == pytest.approx(float(alone([wave[0]], info.sample_rate)[0]), abs=1e-4)
    monkeypatch.undo()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(tok.core.TokError, match=r"utmos22_strong_step7459_v1\.pt"):
        tok.evaluate(model, clips, ["utmos"], out=tmp_path / "none")
    assert not (tmp_path / "none" / "recon").exists()
