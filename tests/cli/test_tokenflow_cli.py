"""`tok encode --model tokenflow-small` / `tok decode` offline with a locally made checkpoint."""

import pytest
import torch
from click.testing import CliRunner

from tok.cli.main import main
from tok.core import Tokens
from tok.tokenizers.tokenflow import PRESETS, TokenFlow
from tok.training.tokenflow import save_checkpoint


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory):
    torch.manual_seed(0)
    return save_checkpoint(TokenFlow(PRESETS["small"]), tmp_path_factory.mktemp("tf") / "small.safetensors")


def test_encode_decode_round_trip(tmp_path, photo, small_weights):
    runner = CliRunner()
    tok_file = tmp_path / "photo.tok"
    result = runner.invoke(main, ["encode", str(photo), "-m", "tokenflow-small", "--weights", str(small_weights), "-o", str(tok_file), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    tokens = Tokens.load(tok_file)
    assert tokens.model == "tokenflow-small" and tokens.layout.kind == "scales" and tokens.num_tokens == 130
    png = tmp_path / "photo.png"
    result = runner.invoke(main, ["decode", str(tok_file), "--weights", str(small_weights), "-o", str(png), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert png.is_file()
    # A prefix of whole scales (-n 14 = 1 + 4 + 9 tokens) decodes to a coarse image.
    coarse = tmp_path / "coarse.tok"
    result = runner.invoke(main, ["encode", str(photo), "-m", "tokenflow-small", "--weights", str(small_weights), "-n", "14", "-o", str(coarse), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Tokens.load(coarse).shapes == [(1, 1, 1), (1, 2, 2), (1, 3, 3)]
    assert runner.invoke(main, ["decode", str(coarse), "--weights", str(small_weights), "--device", "cpu"]).exit_code == 0


def test_bad_requests_exit_1_without_output(tmp_path, photo, small_weights):
    runner = CliRunner()
    out = tmp_path / "x.tok"
    result = runner.invoke(main, ["encode", str(photo), "-m", "tokenflow-small", "--weights", str(small_weights), "-n", "7", "-o", str(out)])
    assert result.exit_code == 1 and "number of tokens must be a sum of whole scales" in result.output and "1, 5, 14, 30, 66, 130" in result.output
    assert not out.exists()
    result = runner.invoke(main, ["decode", str(tmp_path / "missing.tok")])
    assert result.exit_code == 1 and "no such token file" in result.output
