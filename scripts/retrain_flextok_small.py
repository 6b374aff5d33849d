"""Train flextok-small's tokenizer stage on the bundled VAE, afresh or from a checkpoint (run by hand).

    # the bundled weights, on 2 CPU cores: a fresh stage 1 (60 minutes, 5 333 steps; 17.6 dB at 256 tokens)
    .venv/bin/python scripts/retrain_flextok_small.py --data ~/.cache/tok-data/photos/train \
        --out runs/p2long --registers 256 --minutes 60 --views 3 --batch-size 8 --lr 1.5e-3 --readout-lr-scale 0.3
    # continued (75 minutes; 18.3 dB), then the VAE decoder tuned on one-step decodes (20 minutes; 18.4 dB)
    .venv/bin/python scripts/retrain_flextok_small.py --data ~/.cache/tok-data/photos/train \
        --out runs/p3 --init runs/p2long/model.safetensors --minutes 75 --views 4 --batch-size 8 --lr 1e-3 \
        --readout-lr-scale 0.3 --full-keep-prob 0.3 --decoder-steps 2000 --decoder-minutes 20 --precision no
    # cut to its first 64 registers and continued (105 minutes), decoder tuned again (15 minutes):
    # 18.05 dB at 64 tokens, the bundled file
    .venv/bin/python scripts/retrain_flextok_small.py --data ~/.cache/tok-data/photos/train \
        --out runs/r64 --init runs/p3/model.safetensors --registers 64 --minutes 105 --views 4 --batch-size 8 \
        --lr 8e-4 --readout-lr-scale 0.3 --full-keep-prob 0.4 --decoder-steps 2000 --decoder-minutes 15 --precision no
    cp runs/r64/model.safetensors src/tok/zoo_weights/flextok-small.safetensors

The first bundled flextok-small used 4x4 latent patches: 256-dim patch vectors in a 128-wide
trunk. At high noise the flow decoder must return the noise it was given (the target velocity
is noise - x0), and half of each 256-dim noise patch cannot pass a 128-wide residual stream, so
a one-step decode kept unit noise in half of the latent: the loss floor sat near 1.15 whatever
the tokens said. With 2x2 patches (the official size; 64-dim patch vectors) the trunk can carry
the noise and the tokens alone decide the error. The VAE (stage 0) is kept from the bundled file.
"""

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open

from tok.core.weights import BUNDLED_DIR, WeightSource
from tok.tokenizers.flextok import FlexTok, FlexTokConfig, load_weights
from tok.training.flextok import keep_registers, run, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, type=Path)
parser.add_argument("--out", required=True, type=Path)
parser.add_argument("--vae", type=Path, default=BUNDLED_DIR / "flextok-small.safetensors",
                    help="tok checkpoint whose VAE (stage 0) is kept")
parser.add_argument("--minutes", type=float, default=90, help="time cap; the cosine decay ends at it or at --steps")
parser.add_argument("--steps", type=int, default=100_000)
parser.add_argument("--patch-size", type=int, default=2)
parser.add_argument("--time-shift", type=float, default=1000.0)
parser.add_argument("--readout-lr-scale", type=float, default=0.1)
parser.add_argument("--lr", type=float, default=8e-4)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--views", type=int, default=2, help="augmented crops per photo, encoded once up front")
parser.add_argument("--precision", choices=["bf16", "no"], default="bf16",
                    help="bf16 autocast pays off only on CPUs with native bf16 (AVX-512 BF16 / AMX); elsewhere it is emulated and ~20x slower")
parser.add_argument("--init", type=Path, help="continue from this tok checkpoint's whole model instead of a fresh stage 1")
parser.add_argument("--registers", type=int,
                    help="registers of a fresh stage 1 (default: the --vae file's); with --init, keep only the first N")
parser.add_argument("--full-keep-prob", type=float, default=0.0, help="share of samples that keep all registers")
parser.add_argument("--decoder-steps", type=int, default=0, help="then tune the VAE decoder on the flow decoder's outputs")
parser.add_argument("--decoder-minutes", type=float, default=20, help="time cap of the VAE decoder tuning")
parser.add_argument("--decoder-lr", type=float, default=1e-4)
args = parser.parse_args()

torch.set_num_threads(args.threads)
logging.basicConfig(level=logging.INFO)


def from_checkpoint(path: Path) -> FlexTok:
    """A FlexTok built from the config a tok checkpoint carries, with its weights."""
    with safe_open(str(path), framework="pt") as f:
        model = FlexTok(FlexTokConfig.from_dict(json.loads(f.metadata()["tok_config"])))
    load_weights(model, WeightSource("explicit", path))
    return model


start = args.out / "vae.safetensors"  # stage 1 starts from this file's weights (the whole model)
if start.exists():
    model = from_checkpoint(start)
elif args.init:
    model = from_checkpoint(args.init)
    if args.registers:
        model = keep_registers(model, args.registers)
    args.out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, start, dtype=torch.float32)
else:
    source = from_checkpoint(args.vae)
    registers = args.registers or source.config.num_registers
    model = FlexTok(replace(source.config, patch_size=args.patch_size, time_shift=args.time_shift, num_registers=registers))
    model.load_state_dict({k: v for k, v in source.state_dict().items() if k.startswith("vae.")}, strict=False)
    model.set_latent_scaling(source.config.vae.scaling_factor, source.config.vae.shift_factor)
    args.out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, start, dtype=torch.float32)
model = model.float().requires_grad_(True)  # the zoo hands out frozen models
common = dict(views=args.views, full_keep_prob=args.full_keep_prob, lr_decay="cosine")
print(run(model, args.data, args.out, stage="tokenizer", steps=args.steps, batch_size=args.batch_size, lr=args.lr,
          readout_lr_scale=args.readout_lr_scale, max_seconds=60 * args.minutes, mixed_precision=args.precision, **common))
if args.decoder_steps:
    # fp32: on a CPU without native bf16 (AVX2 only) a bf16 autocast made the VAE decoder's backward pass ~35x slower.
    print(run(model, args.data, args.out, stage="decoder", decoder_steps=args.decoder_steps, decoder_lr=args.decoder_lr,
              max_seconds=60 * args.decoder_minutes, mixed_precision="no", **common))
