#!/usr/bin/env bash
# How the bundled flextok-small's VAE (stage 0) was trained; its tokenizer stage was then trained
# afresh with 2x2 patches by scripts/retrain_flextok_small.py (see the README). The first full
# run, as below (2 CPU cores, bf16 autocast): the photo corpus from
# ../shared/data/build-corpus.sh, train split only (the val split is held out for evaluation).
# Stage 0: 4750 steps on 64-pixel crops (~20 min), then 400 steps on whole 256-pixel images
# (GroupNorm statistics of crops differ from whole images). Stage 1 (tokenizer, ~1.7 steps/s):
# STEPS=2250 with the preset's time shift 4 (the decoder barely used the tokens: 12.8 dB), then
# the same command with STEPS=4250 EXTRA="--time-shift 1000" (training mostly at pure noise,
# where only the tokens help): 14.1 dB at 256 tokens on the val photos. Then:
#   .venv/bin/python scripts/flextok_psnr.py --weights runs/flextok-small/model.safetensors --data "$DATA/photos/val"
#   cp runs/flextok-small/model.safetensors src/tok/zoo_weights/flextok-small.safetensors
set -euo pipefail
DATA="${TOK_DATA:-$HOME/.cache/tok-data}"
.venv/bin/tok -v train -m flextok-small --data "$DATA/photos/train" --out runs/flextok-small \
  --vae-steps 4750 --vae-full-steps 400 --vae-batch-size 8 --vae-crop 64 --vae-lr 1e-3 --l2-weight 1 --lpips-weight 0 --gan-weight 0 \
  --steps "${STEPS:-5000}" --batch-size 16 --lr 8e-4 --precision bf16 ${EXTRA:-}
