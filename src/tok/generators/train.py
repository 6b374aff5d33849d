"""Training an AR model on a token dataset with the foundation's `Trainer`, and its checkpoint file.

The checkpoint (`ar.safetensors`) holds the model weights and a JSON header with everything
needed to sample and decode: the GPT config, the pattern (layout and item shapes) and the
dataset's tokenizer (model name, weights digest, class names, encode options).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from ..core import TokError
from ..core.io import atomic_path
from ..core.weights import load_strict, read_state_dict
from ..training.trainer import TrainConfig, Trainer
from .data import Manifest, TokenDataset, TokenSequences
from .gpt import GPT, GPTConfig, preset, sequence_loss
from .patterns import Pattern

logger = logging.getLogger(__name__)

CHECKPOINT = "ar.safetensors"
HEADER_KEY = "tok_ar"


@dataclass
class ARCheckpoint:
    """A trained model and what it was trained on."""

    model: GPT
    dataset: dict[str, Any]  # model, weights_digest, classes, options of the token dataset
    info: dict[str, Any]  # step, validation loss, ...

    @property
    def classes(self) -> list[str]:
        return self.dataset["classes"]


def dataset_summary(manifest: Manifest) -> dict[str, Any]:
    return {"model": manifest.model, "weights_digest": manifest.weights_digest, "classes": manifest.classes, "options": manifest.options}


def save_ar(model: GPT, dataset: dict[str, Any], path: str | os.PathLike, info: dict[str, Any] | None = None) -> Path:
    header = {"config": model.config.to_dict(), "pattern": model.pattern.to_dict(), "dataset": dataset, "info": info or {}}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header)})
    return path


def load_ar(path: str | os.PathLike, device: str | torch.device = "cpu") -> ARCheckpoint:
    """Read an AR checkpoint strictly (every key present, no extra keys)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise TokError(f"{path}: no such AR checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {})[HEADER_KEY])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as e:
        raise TokError(f"{path}: not an AR checkpoint written by tok ({type(e).__name__})") from None
    model = GPT(GPTConfig.from_dict(header["config"]), Pattern.from_dict(header["pattern"]))
    load_strict(model, read_state_dict(path), path)
    return ARCheckpoint(model.to(device).eval(), header["dataset"], header["info"])


def check_same_tokens(a: Manifest, b: Manifest, what: str) -> None:
    """Refuse a validation set (or a resumed run) made by another tokenizer or with other classes."""
    if (a.model, a.weights_digest, a.shapes, a.classes, a.options) != (b.model, b.weights_digest, b.shapes, b.classes, b.options) or not a.layout.compatible_with(b.layout):
        raise TokError(f"{what}: holds tokens of {b.describe()}, classes {b.classes}; training uses {a.describe()}, classes {a.classes}")


@torch.no_grad()
def validation_loss(model: nn.Module, data: TokenSequences, batch_size: int = 32) -> float:
    """Mean cross-entropy (nats per id) over a whole dataset, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for seq, labels in data.batches(batch_size):
        seq, labels = seq.to(device), labels.to(device)
        targets = data.pattern.targets(seq)
        n = int((targets != -100).sum())
        total += float(sequence_loss(model(data.pattern.inputs(seq), labels), targets)) * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def train_ar(
    tokens: str | os.PathLike,
    out_dir: str | os.PathLike,
    preset_name: str = "small",
    *,
    val_tokens: str | os.PathLike | None = None,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 3e-4,
    warmup_steps: int = 100,
    eval_every: int = 200,
    max_minutes: float | None = None,
    codebook_pattern: str = "delay",
    class_dropout: float = 0.1,
    dropout: float = 0.0,
    seed: int = 0,
) -> Path:
    """Train (or resume training) and write `out_dir/ar.safetensors`; returns its path.

    Validation loss (nats per id) is measured every `eval_every` steps and logged to
    `out_dir/val.jsonl`, next to the trainer's `log.jsonl`; the uniform baseline is ln(vocab).
    """
    out = Path(out_dir)
    train_set = TokenDataset(tokens)
    manifest = train_set.manifest
    pattern = train_set.pattern(codebook_pattern)
    config = preset(preset_name, num_classes=len(train_set.classes), class_dropout=class_dropout if train_set.classes else 0.0, dropout=dropout)
    run_file = out / "ar_run.json"
    run = {"config": config.to_dict(), "pattern": pattern.to_dict(), "dataset": dataset_summary(manifest)}
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous["pattern"]["layout"]["vocab_sizes"] != run["pattern"]["layout"]["vocab_sizes"]:
            raise TokError(f"{out}: the checkpoint's vocab {previous['pattern']['layout']['vocab_sizes']} does not match the dataset's {list(manifest.layout.vocab_sizes)}")
        if previous != json.loads(json.dumps(run)):
            raise TokError(f"{out}: holds a run with another model or dataset ({previous['dataset']['model']}, config {previous['config']}); use a new --out")
    out.mkdir(parents=True, exist_ok=True)
    run_file.write_text(json.dumps(run, indent=1))
    val_set = None
    if val_tokens is not None:
        val_data = TokenDataset(val_tokens)
        check_same_tokens(manifest, val_data.manifest, str(val_tokens))
        val_set = TokenSequences(val_data, pattern)
    torch.manual_seed(seed)
    model = GPT(config, pattern)
    logger.info("AR model: %s, %.2fM parameters, %d steps of %d ids", preset_name, sum(p.numel() for p in model.parameters()) / 1e6, pattern.length, pattern.width)
    train_config = TrainConfig(
        out_dir=str(out), steps=steps, batch_size=min(batch_size, len(train_set)), lr=lr, weight_decay=0.05, betas=(0.9, 0.95),
        warmup_steps=warmup_steps, grad_clip=1.0, save_every=eval_every, log_every=min(25, eval_every), seed=seed, mixed_precision="auto",
    )

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor], step: int) -> dict[str, Tensor]:
        seq, labels = batch
        return {"loss": sequence_loss(model(pattern.inputs(seq), labels), pattern.targets(seq))}

    trainer = Trainer(train_config, model, TokenSequences(train_set, pattern), loss_fn)
    trainer.resume()
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    val_log = out / "val.jsonl"
    baseline = math.log(pattern.vocab_limits.max().item())

    def evaluate() -> float | None:
        if val_set is None or not trainer.accelerator.is_main_process:
            return None
        loss = validation_loss(unwrapped, val_set)
        with open(val_log, "a") as f:
            f.write(json.dumps({"step": trainer.counter.step, "val_loss": loss, "uniform": baseline}) + "\n")
        logger.info("step %d: validation loss %.4f (uniform %.4f)", trainer.counter.step, loss, baseline)
        return loss

    if trainer.counter.step == 0:
        evaluate()
    started = time.monotonic()
    val = None
    while trainer.counter.step < steps:
        train_config.steps = min(steps, (trainer.counter.step // eval_every + 1) * eval_every)
        trainer.fit()
        val = evaluate()
        if max_minutes is not None and time.monotonic() - started > 60 * max_minutes:
            logger.info("stopping at step %d: %.1f minute limit", trainer.counter.step, max_minutes)
            break
    info = {"step": trainer.counter.step, "val_loss": val, "uniform_loss": baseline, "preset": preset_name}
    return save_ar(unwrapped, dataset_summary(manifest), out / CHECKPOINT, info)
