"""The CLI on audio: encode / decode / info / models with WavTokenizer, and every bad input case."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from tok.cli.main import main

SPEECH = Path(__file__).parents[1] / "data" / "speech.flac"


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    from tok.codecs.wavtokenizer import WavTokenizer, preset
    from tok.training.wavtokenizer import save_checkpoint

    torch.manual_seed(0)
    model = WavTokenizer(preset("tiny"))
    with torch.no_grad():
        codebook = model.quantizer.vq._codebook
        codebook.embed.normal_(0, 0.05)
        codebook.initted.fill_(True)
    return save_checkpoint(model, tmp_path_factory.mktemp("wt") / "tiny.safetensors")


def test_encode_info_decode_restores_rate_and_length(run, tmp_path, tiny_weights):
    src = tmp_path / "speech.flac"
    src.write_bytes(SPEECH.read_bytes())
    result = run("encode", src, "--model", "wavtokenizer-tiny", "--weights", tiny_weights)
    assert result.exit_code == 0, result.output
    info = json.loads(run("info", tmp_path / "speech.tok", "--json").output)
    assert info["model"] == "wavtokenizer-tiny" and info["layout"] == "codebooks" and info["vocab_sizes"] == [64]
    source = info["sources"][0]
    assert source["source_sample_rate"] == 16000 and source["sample_rate"] == 24000
    frames = -(-source["num_samples"] // 32)
    assert info["stream_shapes"] == [[1, 1, frames]]
    result = run("decode", tmp_path / "speech.tok", "-o", tmp_path / "back.wav", "--weights", tiny_weights)
    assert result.exit_code == 0, result.output
    original, decoded = sf.info(str(src)), sf.info(str(tmp_path / "back.wav"))
    assert (decoded.samplerate, decoded.frames, decoded.channels) == (original.samplerate, original.frames, 1)


def test_folder_of_audio_encodes_with_progress(run, tmp_path, tiny_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, seconds in enumerate((0.2, 0.5, 0.3)):
        sf.write(folder / f"a{i}.wav", (0.1 * np.random.default_rng(i).standard_normal((int(44100 * seconds), 2))).astype(np.float32), 44100)
    (folder / "notes.txt").write_text("not audio")
    result = run("encode", folder, "-m", "wavtokenizer-tiny", "--weights", tiny_weights, "--out-dir", tmp_path / "out", "-b", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a0.tok", "a1.tok", "a2.tok"]
    assert "wrote 3 .tok files" in result.output


def test_models_lists_audio_rates_and_bitrates(run):
    output = run("models").output
    line = next(line for line in output.splitlines() if "wavtokenizer-small-600-24k-4096" in line)
    assert "audio" in line and "40 tokens/s" in line and "0.48 kbps" in line and "4096" in line
    data = json.loads(run("models", "--json").output)
    assert "wavtokenizer-small" in data["aliases"]["wavtokenizer"]


def write_bad_inputs(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("hello " * 100)
    sf.write(folder / "good.flac", (0.1 * np.random.default_rng(0).standard_normal((16000, 1))).astype(np.float32), 16000)
    (folder / "truncated.flac").write_bytes((folder / "good.flac").read_bytes()[:5000])
    nan = np.zeros((1600, 1), np.float32)
    nan[10] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(folder / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    return {"empty.wav": "empty file", "text.wav": "not an audio file", "truncated.flac": "truncated", "nan.wav": "NaN", "zero.wav": "no samples"}


def test_bad_audio_fails_with_one_line_and_no_output(tmp_path, tiny_weights):
    runner = CliRunner()
    cases = write_bad_inputs(tmp_path / "bad")
    for name, message in cases.items():
        path = tmp_path / "bad" / name
        result = runner.invoke(main, ["encode", str(path), "-m", "wavtokenizer-tiny", "--weights", str(tiny_weights), "-o", str(tmp_path / "x.tok")])
        assert result.exit_code == 1, (name, result.output)
        assert message in result.output and str(path) in result.output
        assert not (tmp_path / "x.tok").exists()


@pytest.mark.parametrize("rate,channels", [(8000, 1), (96000, 1), (24000, 2), (48000, 6)])
def test_rates_and_channel_counts_are_converted(run, tmp_path, tiny_weights, rate, channels):
    src = tmp_path / "in.wav"
    sf.write(src, (0.1 * np.random.default_rng(0).standard_normal((rate // 5, channels))).astype(np.float32), rate)
    assert run("encode", src, "-m", "wavtokenizer-tiny", "--weights", tiny_weights).exit_code == 0
    assert run("decode", tmp_path / "in.tok", "--weights", tiny_weights).exit_code == 0
    back = sf.info(str(tmp_path / "in.wav"))
    assert (back.samplerate, back.frames, back.channels) == (rate, rate // 5, 1)


def test_image_tokens_given_to_the_audio_decoder_fail_cleanly(tmp_path, tiny_weights, photo, tiny_flextok_weights):
    runner = CliRunner()
    src = tmp_path / "photo.jpg"
    src.write_bytes(photo.read_bytes())
    assert runner.invoke(main, ["encode", str(src), "-m", "flextok-tiny", "--weights", str(tiny_flextok_weights), "-n", "4"]).exit_code == 0
    result = runner.invoke(main, ["decode", str(tmp_path / "photo.tok"), "-m", "wavtokenizer-tiny", "--weights", str(tiny_weights), "-o", str(tmp_path / "x.wav")])
    assert result.exit_code == 1 and "flextok-tiny" in result.output
    assert not (tmp_path / "x.wav").exists()
