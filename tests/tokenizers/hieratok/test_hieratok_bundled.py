"""The bundled hieratok-small: size budget, offline loading through the alias, and tokens that
carry the photo at every prefix of scales."""

import pytest
import torch
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core.media import read_image
from tok.core.weights import BUNDLED_DIR

MB = 1_000_000


def psnr(a, b):
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))


@pytest.fixture(scope="module")
def small():
    return tok.load("hieratok", device="cpu")


def test_bundled_weights_budget():
    assert (BUNDLED_DIR / "hieratok-small.safetensors").stat().st_size <= 3.5 * MB


def test_alias_resolves_to_the_bundled_model_offline(small):
    assert small.name == "hieratok-small" and small.weights_digest
    assert small.config.scales == (1, 2, 4, 8) and small.config.image_size == 64


def test_tokens_carry_the_photo(small, photo):
    """Under-trained on two busy CPU cores (see README), so this checks information content,
    not a quality target: the photo's own tokens decode closer to it than the tokens of the
    photo upside down, and more scales decode closer than fewer."""
    image, _ = read_image(photo)
    x = small.preprocess(image)
    reference = small.postprocess(x)
    tokens = small.encode(x)
    by_scales = [psnr(small.postprocess(small.decode(tokens, scales=k)), reference) for k in range(1, 5)]
    flipped = psnr(small.postprocess(small.decode(small.encode(x.flip(-2)))), reference)
    assert by_scales[-1] > flipped + 1.0, (by_scales, flipped)
    assert by_scales[-1] > by_scales[0] + 1.0, by_scales
    decoded = small.postprocess(small.decode(tokens))
    assert (decoded.mean((2, 3)) - reference.mean((2, 3))).abs().max() < 0.08  # colours come through


def test_cli_offline_round_trip(tmp_path, photo):
    runner = CliRunner()
    out = tmp_path / "p.tok"
    result = runner.invoke(main, ["encode", str(photo), "--model", "hieratok", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["decode", str(out), "--scales", "3", "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "p.png")[0].shape == (3, 64, 64)
    result = runner.invoke(main, ["decode", str(out), "--scales", "5", "-o", str(tmp_path / "q.png")])
    assert result.exit_code == 1 and "in 1..4, got 5" in result.output and not (tmp_path / "q.png").exists()
