"""`tok encode` / `tok decode` / `tok models` with XY-Tokenizer, conversions and bad input."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from tok.cli.main import main

SPEECH = Path(__file__).parents[2] / "data" / "speech.flac"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_models_lists_xy_with_rate_codebooks_and_bitrate():
    data = json.loads(_run("models", "--json").output)
    rows = {m["name"]: m for m in data["models"]}
    assert "8 codebooks x 1024 at 12.5 Hz (16 kHz audio, 1000 bps)" == rows["xy-tokenizer-official"]["tokens"]
    assert data["aliases"]["xy-tokenizer"] == ["xy-tokenizer-official", "xy-tokenizer-small"]


def test_stereo_8khz_file_round_trips_at_its_rate_and_length(tmp_path, tiny_xy_checkpoint):
    rng = np.random.default_rng(0)
    src = tmp_path / "stereo.wav"
    sf.write(src, (0.1 * rng.standard_normal((12_345, 2))).astype(np.float32), 8000)  # mixed down, resampled
    result = _run("encode", src, "--model", "xy-tokenizer-tiny", "--weights", tiny_xy_checkpoint)
    assert result.exit_code == 0, result.output
    info = json.loads(_run("info", tmp_path / "stereo.tok", "--json").output)
    source = info["sources"][0]
    assert (source["channels"], source["source_sample_rate"], source["sample_rate"]) == (2, 8000, 16000)
    assert info["stream_shapes"] == [[1, 8, -(-source["num_samples"] // 1280)]]
    result = _run("decode", tmp_path / "stereo.tok", "-o", tmp_path / "back.wav", "--weights", tiny_xy_checkpoint)
    assert result.exit_code == 0, result.output
    back = sf.info(str(tmp_path / "back.wav"))
    assert (back.samplerate, back.frames, back.channels) == (8000, 12_345, 1)


def test_not_audio_fails_with_one_line_and_no_output(tmp_path, tiny_xy_checkpoint):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    result = CliRunner().invoke(main, ["encode", str(bad), "--model", "xy-tokenizer-tiny", "--weights", str(tiny_xy_checkpoint)])
    assert result.exit_code == 1
    assert "notes.wav" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "notes.tok").exists()


def test_folder_of_different_lengths_encodes_as_one_batch(tmp_path, tiny_xy_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("a.wav", 5000), ("b.flac", 13_000)):
        sf.write(folder / name, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
    result = _run("encode", folder, "--model", "xy-tokenizer-tiny", "--weights", tiny_xy_checkpoint)
    assert result.exit_code == 0, result.output
    for name, n in (("a", 5000), ("b", 13_000)):
        result = _run("decode", folder / f"{name}.tok", "-o", tmp_path / f"{name}.wav", "--weights", tiny_xy_checkpoint)
        assert result.exit_code == 0, result.output
        assert sf.info(str(tmp_path / f"{name}.wav")).frames == n
