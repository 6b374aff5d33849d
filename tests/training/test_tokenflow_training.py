"""TokenFlow training recipe: losses, semantic distillation with a small random teacher, Trainer run."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from tok.core.weights import WeightSource
from tok.tokenizers.tokenflow import PRESETS, TokenFlow, load_weights
from tok.tokenizers.tokenflow.semantic import CLIPVisionTower
from tok.training.losses import PatchDiscriminator
from tok.training.tokenflow import (
    TokenFlowLossWeights,
    TokenFlowObjective,
    make_loss_fns,
    save_checkpoint,
    semantic_distillation_loss,
    train,
)
from tok.training.trainer import TrainConfig


class RandomTeacher(nn.Module):
    """A frozen random CLIP-style tower + projection: (B, 3, 32, 32) -> (B, 16, 16) patch features,
    standing in for CLIP ViT-B/16 (whose weights cannot be downloaded in tests)."""

    def __init__(self):
        super().__init__()
        self.tower = CLIPVisionTower(32, 8, 32, 1, 2)
        self.proj = nn.Linear(32, 16, bias=False)
        self.requires_grad_(False).eval()

    def forward(self, images):
        return self.proj(self.tower(images))


def test_semantic_loss_is_one_minus_cosine():
    a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    assert semantic_distillation_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert semantic_distillation_loss(a, -3 * a).item() == pytest.approx(2.0)
    assert semantic_distillation_loss(a, a.flip(-1)).item() == pytest.approx(1.0)


def test_loss_terms_gan_start_and_distillation_learns():
    torch.manual_seed(0)
    model = TokenFlowObjective(TokenFlow(PRESETS["tiny"]).train())
    teacher, disc = RandomTeacher(), PatchDiscriminator(width=8, layers=2)
    weights = TokenFlowLossWeights(lpips=0.0, gan=0.5, gan_start=3, semantic=1.0)
    loss_fn, disc_fn = make_loss_fns(weights, disc, teacher)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    before = loss_fn(model, x, step=0)
    assert set(before) == {"l2", "vq_codebook", "vq_commit", "semantic", "loss"}
    expected = before["l2"] + before["vq_codebook"] + before["vq_commit"] + before["semantic"]
    torch.testing.assert_close(before["loss"], expected)
    after_start = loss_fn(model, x, step=3)
    assert "gan_g" in after_start
    d = disc_fn(disc, model, x, 3)["disc_loss"]
    assert d.requires_grad and d.item() > 0
    # A few steps on the semantic loss alone lower it: gradients reach the semantic decoder.
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(8):
        loss = semantic_distillation_loss(model(x).semantic, teacher(x))
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_trainer_run_and_half_precision_checkpoint(tmp_path, photo):
    data = tmp_path / "photos"
    data.mkdir()
    image = Image.open(photo).convert("RGB")
    for i in range(4):
        image.crop((i * 10, i * 10, i * 10 + 120, i * 10 + 120)).save(data / f"{i}.png")
    torch.manual_seed(0)
    tokenizer = TokenFlow(PRESETS["tiny"])
    config = TrainConfig(str(tmp_path / "run"), steps=2, batch_size=2, lr=1e-3, warmup_steps=1, save_every=2, log_every=1)
    weights = TokenFlowLossWeights(lpips=0.0, gan=0.5, gan_start=1)
    train(tokenizer, data, config, weights, teacher=RandomTeacher())
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and '"semantic"' in log[0] and '"gan_g"' in log[1] and '"disc_loss"' in log[1]
    path = save_checkpoint(tokenizer, tmp_path / "model.safetensors")
    loaded = TokenFlow(PRESETS["tiny"])
    load_weights(loaded, WeightSource("explicit", path))
    for k, v in tokenizer.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v.half().float())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert F.mse_loss(loaded.eval().decode(loaded.encode(x)), tokenizer.eval().decode(tokenizer.encode(x))).item() < 1e-3
