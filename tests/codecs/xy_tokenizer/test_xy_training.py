import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from tok.cli.main import main
from tok.codecs.xy_tokenizer import XYTokenizer, load_weights, preset
from tok.codecs.xy_tokenizer.layers import AudioEncoder
from tok.core.errors import TokError
from tok.core.weights import WeightSource
from tok.training.xy_tokenizer import (
    XYTrainingModel,
    init_semantic_teacher,
    run,
    whisper_to_semantic_encoder,
)


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
    """Four short speech-like clips (harmonic tones with a syllable envelope) at 16 kHz."""
    folder = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    for i in range(4):
        t = np.arange(16000 + 3000 * i) / 16000
        phase = 2 * np.pi * np.cumsum(120 + 30 * i + 15 * np.sin(2 * np.pi * t)) / 16000
        wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        sf.write(folder / f"clip{i}.wav", (0.2 * wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 16000)
    return folder


def _random_whisper_teacher(config) -> dict[str, torch.Tensor]:
    """A small random Whisper-like encoder saved under Hugging Face Whisper key names."""
    torch.manual_seed(5)
    encoder = AudioEncoder(config.n_mels, config.dim, config.semantic_layers, config.num_heads, config.ffn_dim, 1500)
    state = {f"model.encoder.{k}": v.clone() for k, v in encoder.state_dict().items()}
    state["model.encoder.embed_positions.weight"] = state.pop("model.encoder.positional_embedding")
    state["model.decoder.embed_tokens.weight"] = torch.zeros(3, config.dim)  # ignored
    return state


def test_whisper_keys_map_onto_the_semantic_encoder():
    config = preset("tiny")
    state = whisper_to_semantic_encoder(_random_whisper_teacher(config))
    assert "positional_embedding" in state and "layers.0.self_attn.k_proj.weight" in state
    assert not any(k.startswith("model.") for k in state)
    with pytest.raises(TokError, match="no Whisper encoder keys"):
        whisper_to_semantic_encoder({"decoder.x": torch.zeros(1)})


def test_semantic_distillation_stage_with_a_random_teacher(speech_dir, tmp_path):
    codec = XYTokenizer(preset("tiny"))
    teacher = _random_whisper_teacher(codec.config)
    init_semantic_teacher(codec, teacher)
    frozen = {k: v.clone() for k, v in codec.semantic_encoder.state_dict().items()}
    torch.testing.assert_close(frozen["conv1.weight"], teacher["model.encoder.conv1.weight"])
    model = XYTrainingModel(codec, "pretrain", distill=True).train()
    out = model(torch.randn(2, 2560) * 0.1)
    assert {"recon", "commit", "semantic"} <= set(out) and 0 <= out["semantic"].detach().item() <= 2
    path = run(codec, speech_dir, tmp_path / "run", steps=2, batch_size=2, crop_seconds=0.16, teacher=teacher, log_every=1)
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"semantic"' in log and '"mel"' in log
    # The semantic tower stayed frozen; the acoustic side trained.
    for k, v in codec.semantic_encoder.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    reloaded = XYTokenizer(preset("tiny"))
    load_weights(reloaded, WeightSource("explicit", path))
    assert reloaded.quantizer.residual_vq.rvq.layers[0]._codebook.initted.item()


def test_posttrain_freezes_encoder_and_codebooks():
    codec = XYTokenizer(preset("tiny"))
    codec.quantizer.set_random_codebooks()
    model = XYTrainingModel(codec, "posttrain", distill=False).train()
    books = codec.quantizer.residual_vq.rvq.codebooks.clone()
    out = model(torch.randn(2, 2560) * 0.1)
    out["recon"].square().mean().backward()
    assert codec.acoustic_encoder.conv1.weight.grad is None and codec.vocos.head.out.weight.grad is not None
    assert torch.equal(codec.quantizer.residual_vq.rvq.codebooks, books)
    with pytest.raises(TokError, match="unknown XY-Tokenizer training stage"):
        XYTrainingModel(codec, "finetune", distill=False)


@pytest.mark.slow
def test_tok_train_encode_decode_cli(speech_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "train"
    result = runner.invoke(main, ["train", "--model", "xy-tokenizer-tiny", "--data", str(speech_dir), "--out", str(out),
                                  "--steps", "2", "-b", "2", "--gan-weight", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    weights = out / "posttrain" / "model.safetensors"
    assert weights.is_file() and (out / "pretrain" / "model.safetensors").is_file()
    clip = tmp_path / "clip.wav"
    shutil.copy(speech_dir / "clip1.wav", clip)
    result = runner.invoke(main, ["encode", str(clip), "--model", "xy-tokenizer-tiny", "--weights", str(weights)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    info = runner.invoke(main, ["info", str(tmp_path / "clip.tok"), "--json"]).output
    assert '"codebooks"' in info and '"num_samples": 19000' in info
    result = runner.invoke(main, ["decode", str(tmp_path / "clip.tok"), "-o", str(tmp_path / "out.wav"), "--weights", str(weights)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    decoded, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and decoded.shape == (19000,)
