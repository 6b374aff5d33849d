"""HieraTok training recipe (two tiny steps end to end) and the trainer's time cap and cosine decay."""

import json

import pytest
import torch
from PIL import Image

from tok.core.weights import WeightSource
from tok.tokenizers.hieratok import HieraTok, load_weights, preset
from tok.training.hieratok import HieraTokLossWeights, run
from tok.training.trainer import TrainConfig, lr_factor


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(4):
        pixels = (torch.rand(40, 48, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("bottleneck", ["fsq", "kl"])
def test_run_writes_a_loadable_checkpoint(photos, tmp_path, bottleneck):
    config = preset("tiny", bottleneck=bottleneck, prefix_dropout=0.5)
    weights = HieraTokLossWeights(lpips=0.0, gan=0.1, disc_start=1)
    path = run(HieraTok(config), photos, tmp_path / "out", steps=3, batch_size=2, weights=weights, mixed_precision="no")
    log = [json.loads(line) for line in (tmp_path / "out" / "train" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and "gan" in log[-1] and "disc_loss" in log[-1]
    assert ("kl" in log[-1]) == (bottleneck == "kl")
    model = HieraTok(config)
    load_weights(model, WeightSource("explicit", path))
    if bottleneck == "kl":
        assert model.latent_scale.item() != 1.0  # measured latent statistics were stored
        assert model.decode_latents(model.eval().encode_latents(torch.zeros(1, 3, 32, 32))).shape == (1, 3, 32, 32)
    else:
        assert model.eval().encode(torch.zeros(1, 3, 32, 32)).num_tokens == 21


def test_time_cap_stops_training(photos, tmp_path):
    path = run(HieraTok(preset("tiny")), photos, tmp_path / "out", steps=1000, batch_size=2,
               weights=HieraTokLossWeights(lpips=0.0, gan=0.0), max_seconds=0.0, mixed_precision="no")
    assert path.is_file()
    assert not (tmp_path / "out" / "train" / "log.jsonl").read_text().strip()  # stopped before the first step


def test_lr_factor_warmup_and_cosine():
    cfg = TrainConfig("x", steps=110, warmup_steps=10, lr_decay="cosine")
    assert lr_factor(cfg, 0) == pytest.approx(0.1 * 1.0)  # warm-up 1/10 times the decay factor 1
    assert lr_factor(cfg, 9) == pytest.approx(1.0)
    assert lr_factor(cfg, 60) == pytest.approx(0.55)
    assert lr_factor(cfg, 110) == pytest.approx(0.1)
    assert lr_factor(cfg, 20, time_fraction=1.0) == pytest.approx(0.1)  # the time cap ends the decay early
    assert lr_factor(cfg, 60, time_fraction=0.1) == pytest.approx(0.55)  # steps further along than time
    assert lr_factor(TrainConfig("x", warmup_steps=10), 500) == 1.0
    with pytest.raises(ValueError, match="unknown lr_decay"):
        lr_factor(TrainConfig("x", lr_decay="linear"), 1)


def test_alignment_hook_adds_a_loss_term(photos, tmp_path):
    calls = []

    def align(model, images, out):
        calls.append(images.shape)
        return out.recon.pow(2).mean()

    run(HieraTok(preset("tiny")), photos, tmp_path / "out", steps=2, batch_size=2,
        weights=HieraTokLossWeights(lpips=0.0, gan=0.0, align=0.5), mixed_precision="no", align_fn=align)
    log = [json.loads(line) for line in (tmp_path / "out" / "train" / "log.jsonl").read_text().splitlines()]
    assert len(calls) == 2 and calls[0] == (2, 3, 32, 32)
    assert log[-1]["loss"] == pytest.approx(log[-1]["l1"] + 0.5 * log[-1]["align"], rel=1e-5)
