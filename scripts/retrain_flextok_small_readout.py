"""Continue the bundled flextok-small's tokenizer stage with an unsaturated FSQ read-out (run by hand).

    .venv/bin/python scripts/retrain_flextok_small_readout.py --data ~/.cache/tok-data/photos/train \
        --out runs/flextok-readout --minutes 35

The first tokenizer run (scripts/train_flextok_small.sh) drove the encoder's read-out to FSQ
into tanh saturation (pre-FSQ |z| median 2.2, 76 % of digits at a level's extreme), where the
read-out's gradient vanishes. This run starts from the bundled weights, divides the read-out
(`enc_to_latents`) by `--readout-shrink` so codes move back into FSQ's linear range, and trains
the tokenizer stage again (VAE frozen, time shift 1000 as the first run's second half) with
the read-out's learning rate scaled by `--readout-lr-scale`, cosine decay over the time cap.
"""

import argparse
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import torch

import tok
from tok.training.flextok import run, save_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, type=Path)
parser.add_argument("--out", required=True, type=Path)
parser.add_argument("--minutes", type=float, default=35)
parser.add_argument("--readout-shrink", type=float, default=4.0)
parser.add_argument("--readout-lr-scale", type=float, default=0.1)
parser.add_argument("--lr", type=float, default=8e-4)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--views", type=int, default=8, help="augmented crops per photo, encoded once up front")
args = parser.parse_args()

torch.set_num_threads(args.threads)
logging.basicConfig(level=logging.INFO)
model = tok.load("flextok-small", device="cpu").float().requires_grad_(True)  # the zoo hands out frozen models
model.config = replace(model.config, time_shift=1000.0)
start = args.out / "vae.safetensors"  # stage 1 starts from this file's weights (the whole model)
if not start.exists():
    with torch.no_grad():
        readout = model.encoder.module_dict["enc_to_latents"]
        for p in readout.parameters():
            p.div_(args.readout_shrink)
    args.out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, start, dtype=torch.float32)
print(run(model, args.data, args.out, stage="tokenizer", steps=100_000, batch_size=16, lr=args.lr,
          mixed_precision="bf16", views=args.views, readout_lr_scale=args.readout_lr_scale, max_seconds=60 * args.minutes, lr_decay="cosine"))
