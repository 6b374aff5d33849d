"""TokenFlow training recipe (official tokenflow/tokenizer/vq_loss.py, vq_train.py).

Generator loss = l2 * MSE(x, x_rec) + lpips * LPIPS(x, x_rec) + gan * hinge_G (from `gan_start`)
               + vq * (codebook + beta * commitment [+ entropy], averaged over scales)
               + semantic * mean(1 - cos(decoded semantic features, teacher features)).
Discriminator: PatchGAN (3 layers, 64 filters) with the hinge loss, from `gan_start`.
Official defaults: l2 1, lpips 1, gan 0.5 from step 20 000 (no adaptive weight), Adam lr 1e-4
with betas (0.9, 0.95), grad clip 1.0, beta 0.25, random scale drop 0.1.

The teacher whose features the semantic decoder regresses (CLIP ViT-B/16 patch tokens projected
by `visual.proj`, or SigLIP's penultimate hidden state) cannot be downloaded here: `teacher` is
any frozen callable images -> (B, g*g, T). The tests use a small random teacher; the bundled
tokenflow-small was trained without one (semantic weight 0, see README).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.weights import save_tok_checkpoint
from ..tokenizers.tokenflow import TokenFlow
from .data import ImageFolder
from .losses import (
    LPIPSLoss,
    PatchDiscriminator,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)

Teacher = Callable[[Tensor], Tensor]


@dataclass
class TokenFlowLossWeights:
    l2: float = 1.0
    lpips: float = 1.0
    gan: float = 0.5
    gan_start: int = 20_000
    vq: float = 1.0
    semantic: float = 1.0


def semantic_distillation_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """mean over tokens of 1 - cos(prediction, target) (the official code; the paper says l2)."""
    return (1 - F.cosine_similarity(prediction, target.to(prediction.dtype), dim=-1)).mean()


class TokenFlowObjective(nn.Module):
    """Routes the training pass through `forward` (DDP synchronises gradients there)."""

    def __init__(self, tokenizer: TokenFlow):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, images: Tensor):
        return self.tokenizer(images)


def make_loss_fns(
    weights: TokenFlowLossWeights,
    discriminator: nn.Module | None,
    teacher: Teacher | None = None,
    perceptual: nn.Module | None = None,
):
    """(generator loss_fn, discriminator loss_fn) for the `Trainer`."""
    last = {}

    def loss_fn(model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        out = model(images)
        losses = {"l2": F.mse_loss(out.recon, images)}
        total = weights.l2 * losses["l2"]
        vq = sum(out.losses.values())
        losses.update({f"vq_{k}": v for k, v in out.losses.items()})
        total = total + weights.vq * vq
        if perceptual is not None and weights.lpips > 0:
            losses["lpips"] = perceptual(images, out.recon)
            total = total + weights.lpips * losses["lpips"]
        if teacher is not None and weights.semantic > 0:
            with torch.no_grad():
                target = teacher(images)
            losses["semantic"] = semantic_distillation_loss(out.semantic, target)
            total = total + weights.semantic * losses["semantic"]
        if discriminator is not None and weights.gan > 0 and step >= weights.gan_start:
            losses["gan_g"] = hinge_generator_loss(discriminator(out.recon))
            total = total + weights.gan * losses["gan_g"]
        last["recon"] = out.recon.detach()
        losses["loss"] = total
        return losses

    def disc_loss_fn(disc: nn.Module, model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        return {"disc_loss": hinge_discriminator_loss(disc(images), disc(last["recon"]))}

    return loss_fn, disc_loss_fn


class _OutOfTime(Exception):
    pass


def train(
    tokenizer: TokenFlow,
    data: str | os.PathLike,
    config: TrainConfig,
    weights: TokenFlowLossWeights | None = None,
    teacher: Teacher | None = None,
    minutes: float | None = None,
) -> TokenFlow:
    """Train `tokenizer` in place on the images in `data` (random crops at its resolution), for
    `config.steps` steps or until `minutes` of wall-clock time have passed; EMA weights at the end."""
    weights = weights or TokenFlowLossWeights()
    size = tokenizer.config.image_size
    dataset = ImageFolder(data, resize=size, crop=size)
    discriminator = PatchDiscriminator() if weights.gan > 0 else None
    perceptual = LPIPSLoss() if weights.lpips > 0 else None
    loss_fn, disc_loss_fn = make_loss_fns(weights, discriminator, teacher, perceptual)
    deadline = time.monotonic() + 60 * minutes if minutes else None

    def timed_loss_fn(model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime
        return loss_fn(model, images, step)

    config.disc_start = weights.gan_start
    trainer = Trainer(
        config, TokenFlowObjective(tokenizer), dataset, timed_loss_fn, discriminator=discriminator, disc_loss_fn=disc_loss_fn
    )
    try:
        trainer.fit()
    except _OutOfTime:
        logger.info("stopped at step %d: %s minutes passed", trainer.counter.step, minutes)
    trainer.final_model()
    return tokenizer


def save_checkpoint(tokenizer: TokenFlow, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """The whole model in the official key layout as safetensors (half precision by default)."""
    return save_tok_checkpoint(tokenizer, path, "tokenflow", asdict(tokenizer.config), dtype)


def main(argv: list[str] | None = None) -> None:
    """Train a TokenFlow preset from scratch: `python -m tok.training.tokenflow --data DIR --out DIR`."""
    import argparse

    from ..tokenizers.tokenflow import PRESETS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, help="wall-clock cap")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lpips-weight", type=float, default=1.0)
    parser.add_argument("--gan-weight", type=float, default=0.5)
    parser.add_argument("--gan-start", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = TokenFlow(PRESETS[args.preset])
    config = TrainConfig(
        str(Path(args.out) / "trainer"), steps=args.steps, batch_size=args.batch_size, lr=args.lr, betas=(0.9, 0.95),
        warmup_steps=50, grad_clip=1.0, ema_decay=0.999, save_every=250, log_every=25,
    )
    # No teacher: its weights cannot be downloaded here (semantic weight 0).
    weights = TokenFlowLossWeights(lpips=args.lpips_weight, gan=args.gan_weight, gan_start=args.gan_start, semantic=0.0)
    train(tokenizer, args.data, config, weights, minutes=args.minutes)
    path = save_checkpoint(tokenizer, Path(args.out) / "model.safetensors")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
