"""HieraTok through the zoo, weights files and the CLI (`--scales`), with a random-weight tiny checkpoint."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import tok
from tok.cli.main import main
from tok.core import Tokens, TokError
from tok.core.media import read_image
from tok.core.weights import WeightSource
from tok.tokenizers.hieratok import HieraTok, load_weights, preset
from tok.training.hieratok import save_checkpoint


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(3)
    model = HieraTok(preset("tiny"))
    return save_checkpoint(model, tmp_path_factory.mktemp("hieratok") / "tiny.safetensors", dtype=torch.float32)


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args])


def test_load_through_the_zoo(tiny_weights):
    model = tok.load("hieratok-tiny", tiny_weights, device="cpu")
    assert model.name == "hieratok-tiny" and model.weights_digest and not model.training
    reference = HieraTok(preset("tiny"))
    load_weights(reference, WeightSource("explicit", tiny_weights))
    for k, v in reference.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def test_weights_for_another_config_are_refused(tiny_weights):
    with pytest.raises(TokError, match="another HieraTok config .*mask"):
        load_weights(HieraTok(preset("tiny", mask="full")), WeightSource("explicit", tiny_weights))


def test_missing_keys_are_named(tiny_weights, tmp_path):
    state = load_file(str(tiny_weights))
    del state["decoder.to_pixels.weight"]
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    with pytest.raises(TokError, match="missing keys .*decoder.to_pixels.weight"):
        load_weights(HieraTok(preset("tiny")), WeightSource("explicit", broken))


def test_models_lists_hieratok(run):
    data = json.loads(run("models", "--json").output)
    names = {m["name"] for m in data["models"]}
    assert {"hieratok-b", "hieratok-small", "hieratok-tiny"} <= names
    assert data["aliases"]["hieratok"] == ["hieratok-b", "hieratok-small"]


def test_cli_encode_decode_with_scales(run, tmp_path, photo, tiny_weights):
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    result = run("encode", src, "--model", "hieratok-tiny", "--weights", tiny_weights)
    assert result.exit_code == 0, result.output
    tokens = Tokens.load(tmp_path / "photo.tok")
    assert tokens.layout.kind == "scales" and tokens.shapes == [(1, 1, 1), (1, 2, 2), (1, 4, 4)]

    result = run("decode", tmp_path / "photo.tok", "--weights", tiny_weights, "-o", tmp_path / "full.png")
    assert result.exit_code == 0, result.output
    result = run("decode", tmp_path / "photo.tok", "--weights", tiny_weights, "--scales", "2", "-o", tmp_path / "two.png")
    assert result.exit_code == 0, result.output
    full, _ = tok.core.media.read_image(tmp_path / "full.png")
    two, _ = tok.core.media.read_image(tmp_path / "two.png")
    assert full.shape == two.shape == (3, 32, 32) and not torch.equal(full, two)

    # encode keeps a prefix; decoding it equals decoding the full file with --scales 2
    result = run("encode", src, "--model", "hieratok-tiny", "--weights", tiny_weights, "--scales", "2", "-o", tmp_path / "p.tok")
    assert result.exit_code == 0, result.output
    assert Tokens.load(tmp_path / "p.tok").shapes == [(1, 1, 1), (1, 2, 2)]
    assert run("decode", tmp_path / "p.tok", "--weights", tiny_weights, "-o", tmp_path / "p.png").exit_code == 0
    prefix, _ = tok.core.media.read_image(tmp_path / "p.png")
    assert torch.equal(prefix, two)


def test_cli_scales_out_of_range(run, tmp_path, photo, tiny_weights):
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    result = run("encode", src, "--model", "hieratok-tiny", "--weights", tiny_weights, "--scales", "4")
    assert result.exit_code == 1 and "number of scales must be an integer in 1..3, got 4" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "photo.tok").exists()
    assert run("encode", src, "--model", "hieratok-tiny", "--weights", tiny_weights).exit_code == 0
    result = run("decode", tmp_path / "photo.tok", "--weights", tiny_weights, "--scales", "0", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and "in 1..3, got 0" in result.output and not (tmp_path / "x.png").exists()
    result = run("decode", tmp_path / "photo.tok", "--weights", tiny_weights, "--steps", "3", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and "does not take --steps" in result.output


def test_cli_ids_outside_the_vocabulary(run, tmp_path, tiny_weights):
    model = tok.load("hieratok-tiny", tiny_weights, device="cpu")
    tokens = model.encode(torch.zeros(1, 3, 32, 32))
    streams = [s.clone() for s in tokens.streams]
    streams[2][0, 0, 0] = 64000  # fits the file's integer type, not the vocabulary
    save_file({f"stream.{i}": s.to(torch.int32) for i, s in enumerate(streams)}, str(tmp_path / "bad.tok"),
              metadata={"tok": json.dumps(tokens.header())})
    result = run("decode", tmp_path / "bad.tok", "--weights", tiny_weights, "-o", tmp_path / "bad.png")
    assert result.exit_code == 1 and "outside the vocabulary [0, 64000)" in result.output
    assert not (tmp_path / "bad.png").exists()


def test_flextok_refuses_scales(run, tmp_path, photo, tiny_flextok_weights):
    result = run("encode", photo, "--model", "flextok-tiny", "--weights", tiny_flextok_weights, "--scales", "2", "-o", tmp_path / "f.tok")
    assert result.exit_code == 1 and "does not take --scales" in result.output


def test_cli_train_tiny(run, tmp_path, photo):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(photo, data / "a.jpg")
    result = run("train", "--model", "hieratok-tiny", "--data", data, "--out", tmp_path / "out", "--steps", "2", "-b", "2",
                 "--lpips-weight", "0", "--precision", "no")
    assert result.exit_code == 0, result.output
    model = tok.load("hieratok-tiny", tmp_path / "out" / "model.safetensors", device="cpu")
    assert model.encode(torch.zeros(1, 3, 32, 32)).num_tokens == 21


def test_python_api_encode_file_with_scales(tmp_path, photo, tiny_weights):
    model = tok.load("hieratok-tiny", tiny_weights, device="cpu")
    out = tok.encode_file(photo, model, tmp_path / "p.tok", scales=1)
    assert Tokens.load(out).shapes == [(1, 1, 1)]
    image = tok.decode_file(out, tmp_path / "p.png", model=model)
    assert read_image(image)[0].shape == (3, 32, 32)
