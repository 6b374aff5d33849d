"""The bundled tokenflow-small: size budget, offline loading from the alias, tokens that carry the photo."""

import pytest
import torch
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core import Tokens
from tok.core.media import read_image
from tok.core.weights import BUNDLED_DIR


def psnr(a, b):
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """An official checkpoint a developer may have cached must not change what 'tokenflow' resolves to."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def small():
    return tok.load("tokenflow", device="cpu")


def test_budget_and_alias(small):
    assert (BUNDLED_DIR / "tokenflow-small.safetensors").stat().st_size <= 3_500_000
    assert small.name == "tokenflow-small" and small.weights_digest


def test_tokens_carry_the_photo(small, photo):
    """An under-trained demo model (see README for its numbers): this checks that the tokens
    carry the image, not a quality target. All scales decode closer to the photo than the
    coarsest scale alone and than the tokens of the photo upside down."""
    image, _ = read_image(photo)
    x = small.preprocess(image)
    reference = small.postprocess(x)
    full = psnr(small.postprocess(small.decode(small.encode(x))), reference)
    coarse = psnr(small.postprocess(small.decode(small.encode(x, num_scales=1))), reference)
    flipped = psnr(small.postprocess(small.decode(small.encode(x.flip(-2)))), reference)
    assert full > coarse + 1.0 and full > flipped + 1.0, (full, coarse, flipped)


def test_cli_offline(tmp_path, photo):
    runner = CliRunner()
    out = tmp_path / "p.tok"
    result = runner.invoke(main, ["encode", str(photo), "--model", "tokenflow", "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert Tokens.load(out).model == "tokenflow-small"
    result = runner.invoke(main, ["decode", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert out.with_suffix(".png").is_file()
