"""VAT training recipe: phase A without quantization, then phase B with VVQ.

Phase A trains encoder + Gaussian head + triplane decoder on BCE(occupancy) + w_kl * KL, the
decoder consuming the sampled latent Z. Between the phases the codebook is set to posterior
means of the training shapes (avoids dead codes when quantization starts late). Phase B adds
VVQ (decoder consumes the quantized latent) and w_vq * VQ loss. Both phases run on the shared
`Trainer` (AdamW, warm-up, clipping, EMA, checkpoints, resume).

    python -m tok.training.vat --model vat-small --data ~/.cache/tok-data/shapes --out runs/vat-small
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.media import list_media
from ..core.weights import WeightSource
from ..tokenizers.vat import VAT, load_weights, preset, save_checkpoint
from .shapes import (
    ShapeDataset,
    ShapeSamples,
    corpus_samples,
    load_samples,
    procedural_samples,
    save_samples,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)

# Corpus meshes never used in training: the held-out set of the bundled model's figures.
HELD_OUT = (
    "assimp__duck.stl", "glmark2__bunny.stl", "openscad__Basics_CSG.stl", "openscad__Old_example004.stl",
    "openscad__Advanced_children.stl", "openscad__Parametric_sign.stl",
)
# Procedural shapes use seeds below this for training, from it for evaluation.
EVAL_SEED = 1_000_000


def make_loss(config, quantize: bool, train_config: TrainConfig | None = None, deadline: float | None = None):
    """BCE + KL (+ VQ). Past `deadline` (time.time()), the phase ends after this step: the
    trainer re-reads `train_config.steps` every step, so a shared CPU cannot overrun the budget."""

    def loss_fn(model: nn.Module, batch: list[Tensor], step: int) -> dict[str, Tensor]:
        if deadline is not None and train_config is not None and time.time() > deadline:
            train_config.steps = min(train_config.steps, step + 1)
        points, queries, occupancy = batch
        out = model(points, queries, quantize=quantize)
        losses = {"bce": F.binary_cross_entropy_with_logits(out.recon.float(), occupancy)}
        total = losses["bce"]
        if "kl" in out.losses:
            losses["kl"] = out.losses["kl"]
            total = total + config.kl_weight * losses["kl"]
        if "vq" in out.losses:
            losses["vq"] = out.losses["vq"]
            total = total + config.vq_weight * losses["vq"]
        with torch.no_grad():
            losses["acc"] = ((out.recon > 0).float() == occupancy).float().mean()
        losses["loss"] = total
        return losses

    return loss_fn


def build_data(model: VAT, data: Path, cache: Path, num_procedural: int, seed: int = 0) -> list[ShapeSamples]:
    """Pools of the training shapes (corpus minus HELD_OUT, plus procedural), cached in `cache`."""
    if cache.is_file():
        return load_samples(cache)
    c = model.config
    pools = (4 * c.num_points, 8 * c.num_uniform_queries, 8 * c.num_near_queries)
    paths = [p for p in list_media(data, "shape") if p.name not in HELD_OUT]
    shapes = corpus_samples(paths, pools, c.near_sigma, c.bound, seed)
    logger.info("%d watertight corpus shapes of %d", len(shapes), len(paths))
    shapes += procedural_samples(num_procedural, pools, c.near_sigma, c.bound, seed)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_samples(shapes, cache)
    return shapes


def run(
    model_name: str,
    data: Path,
    out_dir: Path,
    *,
    steps_a: int,
    steps_b: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    num_procedural: int = 200,
    corpus_repeats: int = 4,
    minutes: float | None = None,
    augment: bool = False,
) -> Path:
    """Train `model_name`'s preset from scratch into `out_dir`; returns the fp16 checkpoint path.

    `minutes` caps the training wall time (data preparation excluded): phase A stops at 60 %
    of it, phase B at the end, whichever comes before their step counts.
    """
    config = preset(model_name.removeprefix("vat-"))
    model = VAT(config)
    shapes = build_data(model, data, out_dir / "shapes.npz", num_procedural)
    corpus = [s for s in shapes if not s.name.startswith("procedural:")]
    # Corpus shapes repeat so they are not swamped by the procedural ones.
    mixed = corpus * corpus_repeats + [s for s in shapes if s.name.startswith("procedural:")]
    dataset = ShapeDataset(mixed, config.num_points, config.num_uniform_queries, config.num_near_queries, repeats=4, augment=augment)
    started = time.time()
    deadline_a = started + 60 * 0.6 * minutes if minutes else None
    deadline_b = started + 60 * minutes if minutes else None
    phase_a = out_dir / "phase-a.safetensors"
    if not phase_a.is_file():
        train_config = TrainConfig(str(out_dir / "a"), steps=steps_a, batch_size=batch_size, lr=lr, warmup_steps=100, ema_decay=0.995, save_every=500, log_every=25)
        trainer = Trainer(train_config, model, dataset, make_loss(config, False, train_config, deadline_a))
        trainer.fit()
        model = trainer.final_model()
        save_checkpoint(model, phase_a, torch.float32)
    else:
        load_weights(model, WeightSource("explicit", phase_a))
    # Codebook from the per-scale residuals of phase-A posterior means of the training shapes.
    model.eval()
    points = torch.stack([dataset[i][0] for i in range(min(len(dataset), 512))])
    with torch.no_grad():
        means = torch.cat([model.posterior(p)[0] for p in points.split(16)])
    model.quantizer.init_codebook_per_scale(means, torch.Generator().manual_seed(0))
    model.train()
    train_config = TrainConfig(str(out_dir / "b"), steps=steps_b, batch_size=batch_size, lr=lr / 2, warmup_steps=50, ema_decay=0.995, save_every=500, log_every=25)
    trainer = Trainer(train_config, model, dataset, make_loss(config, True, train_config, deadline_b))
    trainer.fit()
    model = trainer.final_model()
    path = save_checkpoint(model, out_dir / "model.safetensors")
    (out_dir / "summary.json").write_text(json.dumps({"minutes": (time.time() - started) / 60, "shapes": len(shapes), "corpus": len(corpus)}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vat-small")
    parser.add_argument("--data", type=Path, required=True, help="folder of meshes (the corpus shapes)")
    parser.add_argument("--out", type=Path, default=Path("runs/vat-small"))
    parser.add_argument("--steps-a", type=int, default=3000)
    parser.add_argument("--steps-b", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--procedural", type=int, default=200)
    parser.add_argument("--minutes", type=float, help="wall-clock cap of the training (data preparation excluded)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--augment", action="store_true", help="random signed axis permutations (48 cube symmetries)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    print(run(args.model, args.data, args.out, steps_a=args.steps_a, steps_b=args.steps_b, batch_size=args.batch_size, lr=args.lr, num_procedural=args.procedural, minutes=args.minutes, augment=args.augment))


if __name__ == "__main__":
    main()
