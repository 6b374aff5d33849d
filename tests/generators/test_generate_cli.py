import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import tok
from tok.cli.main import main
from tok.core import TokenLayout, Tokens
from tok.generators.data import TokenDatasetWriter
from tok.generators.train import load_ar


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.mark.slow
def test_encode_train_resume_generate(tmp_path, photos, tiny_flextok_weights):
    ds = tmp_path / "ds"
    result = run("encode", photos, "-m", "flextok-tiny", "--weights", tiny_flextok_weights, "-n", 6, "--dataset", ds, "--shard-size", 4, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "6 items in 2 shards" in result.output and "2 classes" in result.output
    out = tmp_path / "ar"
    args = ["train-ar", "--tokens", ds, "--val-tokens", ds, "--preset", "tiny", "--out", out, "-b", 4, "--eval-every", 2, "--warmup", 1, "--lr", 1e-2]
    result = run(*args, "--steps", 2)
    assert result.exit_code == 0, result.output
    assert load_ar(out / "ar.safetensors").info["step"] == 2
    # Resume: continues from step 2 to 6; the validation loss falls on the (memorised) data.
    result = run(*args, "--steps", 6)
    assert result.exit_code == 0, result.output
    val = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert [r["step"] for r in val] == [0, 2, 4, 6]
    assert val[-1]["val_loss"] < val[0]["val_loss"] and abs(val[0]["uniform"] - np.log(64000)) < 1e-6
    checkpoint = load_ar(out)
    assert checkpoint.info["step"] == 6 and checkpoint.classes == ["a", "b"]
    samples = tmp_path / "samples"
    result = run("generate", "--ar", out / "ar.safetensors", "--class", "b", "-n", 3, "--cfg", 2.0, "--top-k", 50, "--out", samples, "--weights", tiny_flextok_weights, "--device", "cpu")
    assert result.exit_code == 0, result.output
    pngs = sorted(samples.glob("*.png"))
    assert len(pngs) == 3 and Image.open(pngs[0]).size == (64, 64)
    generated = Tokens.load(samples / "sample-0000.tok")
    assert generated.model == "flextok-tiny" and generated.shapes == [(1, 6)] and generated.sources[0]["class"] == "b"
    # The Python API: a prefix of 3 tokens, same seed -> the same first tokens as the CLI run.
    tokens, images, _ = tok.generate(out, 3, label="b", cfg=2.0, top_k=50, num_tokens=3, weights=tiny_flextok_weights, device="cpu")
    cli_ids = torch.cat([Tokens.load(samples / f"sample-{i:04d}.tok").streams[0] for i in range(3)])
    assert images.shape == (3, 3, 64, 64) and tokens.shapes == [(3, 3)]
    assert torch.equal(tokens.streams[0], cli_ids[:, :3])

    bad = [
        (["--top-p", "0"], "top-p must be in (0, 1]"),
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--class", "c"], "unknown class 'c'"),
        (["--class", "7"], "class label 7 out of range 0..1"),
    ]
    for extra, message in bad:
        result = run("generate", "--ar", out, "-n", 1, "--out", samples, "--weights", tiny_flextok_weights, "--device", "cpu", *extra)
        assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_vocab_mismatch_and_mixed_validation_set(tmp_path, photos, tiny_flextok_weights):
    ds = tmp_path / "ds"
    assert run("encode", photos, "-m", "flextok-tiny", "--weights", tiny_flextok_weights, "-n", 4, "--dataset", ds, "--device", "cpu").exit_code == 0
    out = tmp_path / "ar"
    assert run("train-ar", "--tokens", ds, "--preset", "tiny", "--out", out, "-b", 2, "--steps", 1).exit_code == 0
    # Another tokenizer's dataset with a smaller vocabulary.
    other = tmp_path / "other"
    writer = TokenDatasetWriter(other)
    tokens = Tokens([torch.randint(0, 100, (4, 4))], TokenLayout("sequence", (100,), (("n",),)), "toy", "d1")
    writer.start(tokens, [], {"num_tokens": None})
    writer.write_shard(tokens, [-1] * 4, [f"{i}.png" for i in range(4)])
    result = run("train-ar", "--tokens", other, "--preset", "tiny", "--out", out, "-b", 2, "--steps", 2)
    assert result.exit_code == 1 and "does not match the dataset's [100]" in result.output
    result = run("train-ar", "--tokens", ds, "--val-tokens", other, "--preset", "tiny", "--out", tmp_path / "ar2", "-b", 2, "--steps", 1)
    assert result.exit_code == 1 and "holds tokens of model 'toy'" in result.output
    # A checkpoint asked to decode with a tokenizer of another vocabulary.
    from tok.generators.generate import check_tokenizer

    checkpoint = load_ar(out)
    checkpoint.model.pattern.layout = TokenLayout("sequence", (100,), (("n",),))
    tiny = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    with pytest.raises(tok.TokError, match=r"vocab \[100\] \(sequence\) does not match 'flextok-tiny' \[64000\]"):
        check_tokenizer(checkpoint, tiny)
