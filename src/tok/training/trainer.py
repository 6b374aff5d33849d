"""One trainer for every tokenizer, on Accelerate.

One CPU process, one GPU, or many GPUs and nodes through `accelerate launch` / `torchrun`
without code changes. Features: AdamW with linear warm-up, gradient clipping, bf16 autocast on
GPU, EMA, an optional discriminator with its own optimizer (GAN losses), periodic checkpoints
with `accelerator.save_state`, resume from the last checkpoint, a tqdm progress bar on the main
process and a JSON-lines log.

A recipe supplies `loss_fn(model, batch, step) -> {"loss": total, ...}` and, for GANs,
`disc_loss_fn(discriminator, model, batch, step) -> {"disc_loss": ..., ...}`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .ema import EMA

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Tensor, int], dict[str, Tensor]]
DiscLossFn = Callable[[nn.Module, nn.Module, Tensor, int], dict[str, Tensor]]


@dataclass
class TrainConfig:
    out_dir: str
    steps: int = 10_000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    save_every: int = 1000
    log_every: int = 25
    seed: int = 0
    num_workers: int = 0
    disc_lr: float = 1e-4
    disc_start: int = 0
    # "auto": bf16 autocast on GPU, fp32 on CPU; "bf16" also on CPU (about 1.6x faster convs
    # on CPUs with AVX-512 bf16); "no": fp32 everywhere.
    mixed_precision: str = "auto"
    # Stop (and save) once this many seconds of training have passed in this run; None = no cap.
    max_seconds: float | None = None
    # Learning rate after warm-up: "constant", or "cosine" down to 10 % at `steps` or at
    # `max_seconds`, whichever comes first (so a time-capped run on a busy machine still decays).
    lr_decay: str = "constant"


def lr_factor(config: TrainConfig, step: int, time_fraction: float = 0.0) -> float:
    """Multiplier of the base learning rate: linear warm-up, then constant or cosine decay.

    `time_fraction`: elapsed share of `max_seconds`; the cosine follows whichever of steps and
    time is further along.
    """
    warmup = min(1.0, (step + 1) / max(1, config.warmup_steps))
    if config.lr_decay == "constant":
        return warmup
    if config.lr_decay != "cosine":
        raise ValueError(f"unknown lr_decay {config.lr_decay!r}; expected constant or cosine")
    step_fraction = max(0, step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    progress = min(1.0, max(step_fraction, time_fraction))
    return warmup * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


class _Counter:
    """The step counter, checkpointed with the rest of the state."""

    def __init__(self):
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        dataset: Dataset,
        loss_fn: LossFn,
        *,
        parameters: list[nn.Parameter] | None = None,
        discriminator: nn.Module | None = None,
        disc_loss_fn: DiscLossFn | None = None,
    ):
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = config
        self.out_dir = Path(config.out_dir)
        precision = config.mixed_precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_available() else "no"
        self.accelerator = Accelerator(mixed_precision=precision)
        set_seed(config.seed)
        params = parameters if parameters is not None else [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self._start_time: float | None = None
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s, self.time_fraction()))
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True, num_workers=config.num_workers)
        if len(loader) == 0:
            raise ValueError(f"dataset of {len(dataset)} items is smaller than one batch of {config.batch_size}")
        self.model, self.optimizer, self.scheduler, self.loader = self.accelerator.prepare(model, optimizer, scheduler, loader)
        self.loss_fn, self.disc_loss_fn = loss_fn, disc_loss_fn
        self.discriminator = self.disc_optimizer = None
        if discriminator is not None:
            disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=config.disc_lr, betas=config.betas)
            self.discriminator, self.disc_optimizer = self.accelerator.prepare(discriminator, disc_optimizer)
        self.ema = EMA(self.accelerator.unwrap_model(self.model), config.ema_decay)
        self.counter = _Counter()
        self.accelerator.register_for_checkpointing(self.ema, self.counter)

    def time_fraction(self) -> float:
        """Elapsed share of `max_seconds` in this run (0 without a cap or before `fit`)."""
        if self.config.max_seconds is None or self._start_time is None:
            return 0.0
        return min(1.0, (time.monotonic() - self._start_time) / max(self.config.max_seconds, 1e-9))

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoint"

    def save(self) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(self.checkpoint_dir))

    def resume(self) -> bool:
        if not self.checkpoint_dir.is_dir():
            return False
        self.accelerator.load_state(str(self.checkpoint_dir))
        logger.info("resumed from %s at step %d", self.checkpoint_dir, self.counter.step)
        return True

    def _batches(self):
        epoch = 0
        while True:
            if hasattr(self.loader, "set_epoch"):
                self.loader.set_epoch(epoch)
            yield from self.loader
            epoch += 1

    def fit(self) -> dict[str, float]:
        """Train until `config.steps`, resuming from the last checkpoint if there is one."""
        cfg, acc = self.config, self.accelerator
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        if acc.is_main_process:
            (self.out_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
        log_file = open(self.out_dir / "log.jsonl", "a") if acc.is_main_process else None
        bar = tqdm(total=cfg.steps, initial=self.counter.step, disable=not acc.is_main_process, desc="train")
        running: dict[str, float] = {}
        self.model.train()
        batches = self._batches()
        self._start_time = time.monotonic()
        try:
            while self.counter.step < cfg.steps:
                if cfg.max_seconds is not None and time.monotonic() - self._start_time > cfg.max_seconds:
                    logger.info("stopping at step %d: time cap of %.0f s reached", self.counter.step, cfg.max_seconds)
                    self.save()
                    break
                batch = next(batches)
                step = self.counter.step
                losses = self.loss_fn(self.model, batch, step)
                loss = losses["loss"]
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}")
                self.optimizer.zero_grad(set_to_none=True)
                acc.backward(loss)
                if cfg.grad_clip:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                if self.discriminator is not None and step >= cfg.disc_start:
                    disc_losses = self.disc_loss_fn(self.discriminator, self.model, batch, step)
                    self.disc_optimizer.zero_grad(set_to_none=True)
                    acc.backward(disc_losses["disc_loss"])
                    self.disc_optimizer.step()
                    losses = {**losses, **disc_losses}
                self.ema.update(acc.unwrap_model(self.model))
                self.counter.step += 1
                for k, v in losses.items():
                    running[k] = running.get(k, 0.0) + float(v.detach())
                if self.counter.step % cfg.log_every == 0 or self.counter.step == cfg.steps:
                    n = cfg.log_every if self.counter.step % cfg.log_every == 0 else self.counter.step % cfg.log_every
                    means = {k: v / n for k, v in running.items()}
                    running = {}
                    bar.set_postfix({k: f"{v:.4f}" for k, v in means.items()})
                    if log_file:
                        log_file.write(json.dumps({"step": self.counter.step, "lr": self.scheduler.get_last_lr()[0], **means}) + "\n")
                        log_file.flush()
                if self.counter.step % cfg.save_every == 0 or self.counter.step == cfg.steps:
                    self.save()
                bar.update(1)
        finally:
            bar.close()
            if log_file:
                log_file.close()
        return {"step": self.counter.step}

    def final_model(self, use_ema: bool = True) -> nn.Module:
        """The unwrapped model, with EMA weights copied in when `use_ema`."""
        model = self.accelerator.unwrap_model(self.model)
        if use_ema:
            self.ema.copy_to(model)
        return model
