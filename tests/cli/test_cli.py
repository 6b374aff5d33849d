import json
import shutil

import pytest
from click.testing import CliRunner

from tok.cli.main import main


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_models_lists_the_zoo(run):
    result = run("models", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    names = {m["name"] for m in data["models"]}
    assert {"flextok-small", "flextok-d18-d28-dfn", "flextok-d12-d12-in1k"} <= names
    assert data["aliases"]["flextok"][-1] == "flextok-small"
    assert "flextok-small" in run("models").output


def test_encode_info_decode(run, tmp_path, photo, tiny_flextok_weights):
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    result = run("encode", src, "--model", "flextok-tiny", "--weights", tiny_flextok_weights, "--tokens", "7")
    assert result.exit_code == 0, result.output
    tok_file = tmp_path / "photo.tok"
    assert tok_file.is_file()
    info = json.loads(run("info", tok_file, "--json").output)
    assert info["model"] == "flextok-tiny" and info["layout"] == "sequence"
    assert info["vocab_sizes"] == [64000] and info["stream_shapes"] == [[1, 7]] and info["num_tokens"] == 7
    assert info["sources"][0]["width"] == 240 and info["sources"][0]["height"] == 320
    result = run("decode", tok_file, "-o", tmp_path / "back.png", "--weights", tiny_flextok_weights, "--steps", "2")
    assert result.exit_code == 0, result.output
    from PIL import Image

    assert Image.open(tmp_path / "back.png").size == (64, 64)
    result = run("decode", tok_file, "-o", tmp_path / "heun.png", "--weights", tiny_flextok_weights, "--steps", "2", "--sampler", "heun")
    assert result.exit_code == 0, result.output
    result = run("decode", tok_file, "-o", tmp_path / "bad.png", "--weights", tiny_flextok_weights, "--sampler", "ddim")
    assert result.exit_code == 1 and "unknown sampler 'ddim'" in result.output
    assert not (tmp_path / "bad.png").exists()


def test_encode_folder_with_progress(run, tmp_path, photo, tiny_flextok_weights):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        shutil.copy(photo, folder / f"p{i}.jpg")
    (folder / "notes.txt").write_text("not an image")
    result = run("encode", folder, "--model", "flextok-tiny", "--weights", tiny_flextok_weights, "--out-dir", tmp_path / "out", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.tok", "p1.tok", "p2.tok"]
    assert "wrote 3 .tok files" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["encode", "{tmp}/missing.jpg", "--model", "flextok-tiny", "--weights", "{w}"], "missing.jpg: no such file or folder"),
        (["encode", "{tmp}/empty_dir", "--model", "flextok-tiny", "--weights", "{w}"], "empty_dir: no image files found"),
        (["encode", "{tmp}/cut.jpg", "--model", "flextok-tiny", "--weights", "{w}"], "cut.jpg: corrupt or truncated image"),
        (["encode", "{tmp}/zero.png", "--model", "flextok-tiny", "--weights", "{w}"], "zero.png: empty file"),
        (["encode", "{tmp}/ok.jpg", "--model", "nope"], "unknown model 'nope'"),
        (["encode", "{tmp}/ok.jpg", "--model", "flextok-tiny", "--weights", "{w}", "--tokens", "0"], "number of tokens must be an integer in 1..16"),
        (["encode", "{tmp}/ok.jpg", "--model", "flextok-tiny", "--weights", "{w}", "--tokens", "300"], "number of tokens must be an integer in 1..16"),
        (["decode", "{tmp}/garbage.tok"], "garbage.tok: not a valid .tok file"),
        (["decode", "{tmp}/other_tiny.tok", "--model", "flextok-small"], "were made by model 'flextok-tiny', not 'flextok-small'"),
        (["decode", "{tmp}/range.tok", "--weights", "{w}"], "outside the vocabulary"),
        (["info", "{tmp}/missing.tok"], "missing.tok: no such token file"),
        (["encode", "{tmp}/ok.jpg", "--model", "wavtokenizer-small", "--cpu-winograd-encoder"],
         "wavtokenizer-small has no encoder with 3x3 convolutions for Winograd"),
    ],
)
def test_user_errors_exit_1_with_one_line(run, tmp_path, photo, tiny_flextok_weights, args, message):
    import torch
    from safetensors.torch import save_file

    from tok.core import TokenLayout, Tokens

    (tmp_path / "empty_dir").mkdir()
    shutil.copy(photo, tmp_path / "ok.jpg")
    data = photo.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "garbage.tok").write_bytes(b"garbage")
    layout = TokenLayout("sequence", (64000,), (("n",),))
    Tokens([torch.zeros(1, 4, dtype=torch.long)], layout, "flextok-tiny").save(tmp_path / "other_tiny.tok")
    # A file whose ids exceed the vocabulary its header declares (written around Tokens' checks).
    header = Tokens([torch.zeros(1, 4, dtype=torch.long)], layout, "flextok-tiny").header()
    ids = torch.tensor([[0, 1, 64000, 65535]], dtype=torch.uint16)
    save_file({"stream.0": ids}, str(tmp_path / "range.tok"), metadata={"tok": json.dumps(header)})
    before = set(tmp_path.rglob("*"))
    result = run(*[a.format(tmp=tmp_path, w=tiny_flextok_weights) for a in args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert set(tmp_path.rglob("*")) == before  # no partial output left behind


def test_usage_errors_exit_2(run, tmp_path):
    assert run("encode").exit_code == 2
    assert run("encode", "x.jpg").exit_code == 2  # --model missing
    assert run("bogus").exit_code == 2


def test_decode_refuses_tokens_from_other_weights(run, tmp_path, photo, tiny_flextok_weights):
    from safetensors.torch import load_file, save_file

    shutil.copy(photo, tmp_path / "a.jpg")
    assert run("encode", tmp_path / "a.jpg", "-m", "flextok-tiny", "--weights", tiny_flextok_weights).exit_code == 0
    other = tmp_path / "other_weights"
    shutil.copytree(tiny_flextok_weights, other)
    state = load_file(str(other / "model.safetensors"))
    state["decoder.module_dict.dec_nested_dropout.dropout_mask_token"] += 1
    save_file(state, str(other / "model.safetensors"))
    result = run("decode", tmp_path / "a.tok", "--weights", other)
    assert result.exit_code == 1 and "were made with weights" in result.output


def test_compile_flag_compiles_the_networks_before_encode_decode_and_eval(run, tmp_path, photo, tiny_flextok_weights, monkeypatch):
    import torch

    from tok.core.tokenizer import Tokenizer

    compiled = []
    real = Tokenizer.compile_networks

    def traced_only(self, mode=None):  # the same wrapping, traced by dynamo but run eagerly (no C++ build)
        compiled.append(self.name)
        real(self, mode)
        for path in self.compile_parts:
            part = self.get_submodule(path)
            part._compiled_call_impl = torch.compile(part._call_impl, backend="eager")
        return self

    monkeypatch.setattr(Tokenizer, "compile_networks", traced_only)
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    weights = ("--weights", tiny_flextok_weights)
    assert run("encode", src, "-m", "flextok-tiny", *weights, "--tokens", "7", "--compile").exit_code == 0
    assert run("decode", tmp_path / "photo.tok", "-o", tmp_path / "back.png", *weights, "--steps", "2", "--compile").exit_code == 0
    assert (tmp_path / "back.png").is_file() and compiled == ["flextok-tiny", "flextok-tiny"]
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photo, folder / "a.jpg")
    result = run("eval", "-m", "flextok-tiny", *weights, "--data", folder, "--out", tmp_path / "run", "--metrics", "psnr", "--compile")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["options"]["compiled"] is True


def test_cpu_inference_flags_reach_the_model_on_encode_and_decode(run, tmp_path, photo, tiny_flextok_weights, monkeypatch):
    import tok.api
    from tok.nn.int8 import int8_supported

    loaded = []
    real = tok.api.load
    monkeypatch.setattr(tok.api, "load", lambda *a, **k: loaded.append(real(*a, **k)) or loaded[-1])
    src = tmp_path / "photo.jpg"
    shutil.copy(photo, src)
    weights = ("--weights", tiny_flextok_weights)
    assert run("encode", src, "-m", "flextok-tiny", *weights, "--cpu-bf16", "--cpu-winograd-encoder").exit_code == 0
    int8 = ("--cpu-int8",) if int8_supported() else ()
    assert run("decode", tmp_path / "photo.tok", "-o", tmp_path / "back.png", *weights, "--steps", "1", *int8).exit_code == 0
    encoder, decoder = loaded
    assert encoder.cpu_bf16 and encoder.cpu_winograd_encoder and not encoder.cpu_int8
    assert decoder.cpu_int8 == bool(int8) and not decoder.cpu_bf16 and not decoder.cpu_winograd_encoder
    assert (tmp_path / "back.png").is_file()
    assert json.loads(run("info", tmp_path / "photo.tok", "--json").output)["encoder_options"] == {"cpu_bf16": True, "cpu_winograd_encoder": True}
    assert "encoded with cpu_bf16, cpu_winograd_encoder (opt-in paths" in run("info", tmp_path / "photo.tok").output


def test_skip_existing_refuses_tokens_made_another_way(run, tmp_path, photo, tiny_flextok_weights):
    # A resumed folder run must not mix the Winograd encoder's ids with the direct ones.
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        shutil.copy(photo, folder / f"{name}.jpg")
    args = ("encode", folder, "-m", "flextok-tiny", "--weights", tiny_flextok_weights, "--out-dir", tmp_path / "out", "--tokens", "4")
    assert run(*args).exit_code == 0
    (tmp_path / "out" / "b.tok").unlink()
    result = run(*args, "--skip-existing", "--cpu-winograd-encoder")
    assert result.exit_code == 1
    assert "a.tok: made by flextok-tiny (weights" in result.output and "encoder options default), but this run encodes with" in result.output
    assert "encoder options {'cpu_winograd_encoder': True}); remove it or write to another folder" in result.output
    assert not (tmp_path / "out" / "b.tok").exists()
    result = run(*args, "--skip-existing")
    assert result.exit_code == 0 and (tmp_path / "out" / "b.tok").is_file()
