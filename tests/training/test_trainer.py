import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from tok.training.ema import EMA
from tok.training.trainer import TrainConfig, Trainer


def regression_problem():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return TensorDataset(x, y)


def mse(model, batch, step):
    x, y = batch
    loss = nn.functional.mse_loss(model(x), y)
    return {"loss": loss, "mse": loss}


def test_trainer_learns_logs_and_resumes(tmp_path):
    dataset = regression_problem()
    config = TrainConfig(str(tmp_path), steps=40, batch_size=16, lr=0.3, warmup_steps=1, save_every=20, log_every=10, ema_decay=0.9)
    torch.manual_seed(0)
    trainer = Trainer(config, nn.Linear(4, 1), dataset, mse)
    trainer.fit()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [10, 20, 30, 40]
    assert log[-1]["mse"] < 0.1 * log[0]["mse"]
    assert (tmp_path / "checkpoint").is_dir()

    # A new trainer on the same folder resumes at step 40 and continues to 50.
    torch.manual_seed(123)
    resumed = Trainer(TrainConfig(**{**config.__dict__, "steps": 50}), nn.Linear(4, 1), dataset, mse)
    resumed.resume()
    assert resumed.counter.step == 40
    assert torch.allclose(resumed.final_model(use_ema=False).weight, trainer.final_model(use_ema=False).weight)
    assert resumed.ema.num_updates == 40
    resumed.fit()
    assert resumed.counter.step == 50
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()][-1] == 50


def test_ema_tracks_parameters():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(50):
        ema.update(model)
    target = nn.Linear(2, 2)
    ema.copy_to(target)
    assert torch.allclose(target.weight, torch.ones(2, 2), atol=1e-3)


def test_nonfinite_loss_stops_training(tmp_path):
    def broken(model, batch, step):
        return {"loss": model(batch[0]).sum() * float("nan")}

    trainer = Trainer(TrainConfig(str(tmp_path), steps=5, batch_size=16), nn.Linear(4, 1), regression_problem(), broken)
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        trainer.fit()


@pytest.mark.slow
def test_flextok_recipe_end_to_end(tmp_path):
    """Both FlexTok stages on two small images, then the checkpoint loads strictly through the zoo."""
    from tok import load
    from tok.tokenizers.flextok import FlexTok, preset
    from tok.training.flextok import VAELossWeights, run

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(data / f"{i}.png")
    torch.manual_seed(0)
    model = FlexTok(preset("tiny"))
    weights = VAELossWeights(lpips=0.0, gan=0.0)
    readout = model.encoder.module_dict["enc_to_latents"].proj.weight.detach().clone()
    registers = model.encoder.module_dict["enc_register_module"].registers.detach().clone()
    path = run(model, data, tmp_path / "run", vae_steps=3, steps=3, batch_size=2, vae_batch_size=2, vae_crop=32, views=2,
               loss_weights=weights, save_every=2, readout_lr_scale=0.0)
    assert path.name == "model.safetensors" and (tmp_path / "run" / "vae.safetensors").is_file()
    # readout_lr_scale=0 freezes the FSQ read-out while the rest of the encoder trains.
    assert torch.equal(model.encoder.module_dict["enc_to_latents"].proj.weight, readout.half().float())  # vae.safetensors is fp16
    assert not torch.equal(model.encoder.module_dict["enc_register_module"].registers, registers)
    assert model.config.vae.scaling_factor != 1.0  # set from the latent statistics
    loaded = load("flextok-tiny", weights=path, device="cpu")
    assert loaded.config.vae == model.config.vae
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    # fp16 storage: the reloaded model gives the same image up to half-precision rounding.
    model = model.eval().half().float()
    assert torch.allclose(loaded.decode(loaded.encode(images), steps=1), model.decode(model.encode(images), steps=1), atol=1e-2)


def test_flextok_keep_k_full_share():
    from tok.tokenizers.flextok import FlexTok, preset

    model = FlexTok(preset("tiny"))
    n = model.config.num_registers
    torch.manual_seed(0)
    assert torch.equal(model.sample_keep_k(64, torch.device("cpu"), full_prob=1.0), torch.full((64,), n))
    drawn = model.sample_keep_k(4000, torch.device("cpu"), full_prob=0.5)
    assert drawn.min() >= 1 and drawn.max() <= n
    # Half kept whole on purpose, plus the uniform draw's own 1/n share of k = n.
    assert abs((drawn == n).float().mean().item() - (0.5 + 0.5 / n)) < 0.03


def test_flextok_keep_registers_starts_a_shorter_model():
    """The first registers' ids survive (causal register mask); the decoder takes the short prefix."""
    from tok.core import TokError
    from tok.tokenizers.flextok import FlexTok, preset
    from tok.training.flextok import keep_registers

    torch.manual_seed(0)
    model = FlexTok(preset("tiny")).eval()
    shorter = keep_registers(model, 6).eval()
    assert shorter.config.num_registers == 6 and shorter.layout.vocab_sizes == model.layout.vocab_sizes
    assert shorter.config.vae == model.config.vae
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    ids = shorter.encode(images).streams[0]
    assert ids.shape == (2, 6) and torch.equal(ids, model.encode(images, num_tokens=6).streams[0])
    assert shorter.decode(ids, steps=1).shape == (2, 3, 64, 64)
    for bad in (0, 17):
        with pytest.raises(TokError, match=f"can keep 1..16 registers, not {bad}"):
            keep_registers(model, bad)


@pytest.mark.slow
def test_flextok_decoder_stage_tunes_only_the_vae_decoder(tmp_path):
    """Stage 2 lowers the pixel error of one-step decodes on its data; tokens stay the same."""
    from tok.tokenizers.flextok import FlexTok, preset
    from tok.training.flextok import run, save_checkpoint

    data = tmp_path / "photos"
    data.mkdir()
    grid = np.linspace(0, 255, 64)
    for i in range(4):  # smooth colour ramps: learnable within a few steps
        image = np.stack([np.add.outer(grid, grid * (i - 1.5)) / 2, np.add.outer(grid * i / 3, grid) / 2, np.full((64, 64), 60 * i)], -1)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(data / f"{i}.png")
    torch.manual_seed(0)
    model = FlexTok(preset("tiny", decode_steps=1))
    (tmp_path / "run").mkdir()
    save_checkpoint(model, tmp_path / "run" / "model.safetensors", dtype=torch.float32)
    with pytest.raises(Exception, match="run the tokenizer stage first"):
        run(FlexTok(preset("tiny")), data, tmp_path / "empty", stage="decoder")
    images = torch.stack([torch.from_numpy(np.array(Image.open(data / f"{i}.png"))).permute(2, 0, 1) for i in range(4)]).float() / 127.5 - 1
    model.eval()
    before_ids = model.encode(images).streams[0]
    before = ((model.decode(model.encode(images), steps=1) - images) ** 2).mean()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    run(model, data, tmp_path / "run", stage="decoder", decoder_steps=40, decoder_lr=3e-3, decoder_batch_size=4, decoder_views=1)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, state[k])}
    assert changed and all(k.startswith(("vae.vae.decoder.", "vae.vae.post_quant_conv.")) for k in changed)
    model.eval()
    assert torch.equal(model.encode(images).streams[0], before_ids)
    after = ((model.decode(model.encode(images), steps=1) - images) ** 2).mean()
    assert after < 0.7 * before
