#!/usr/bin/env bash
# How the bundled omnitokenizer-small was trained: one CPU thread, niced, 28 minutes of wall
# clock on a shared 2-core machine (data loading included), on the corpus from
# ../shared/data/build-corpus.sh, train splits only (val splits are held out for evaluation).
# Stage 1: 128-pixel photo crops (batch 6) for a third of the time; stage 2: the tubelet
# embedding inflated from the first-frame one, then batches alternating between photos (6) and
# 9-frame clips (2; half camera pans/zooms made from the photos, half real corpus footage).
# LPIPS is off (its VGG backbone is not on the machine) and so are the GANs (too few steps to
# help). Then:
#   cp runs/omni-small/omnitokenizer.safetensors src/tok/zoo_weights/omnitokenizer-small.safetensors
set -euo pipefail
DATA="${TOK_DATA:-$HOME/.cache/tok-data}"
OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 .venv/bin/python -m tok.training.omnitokenizer \
  --photos "$DATA/photos/train" --videos "$DATA/video/train" --out runs/omni-small --preset small \
  --image-steps 100000 --joint-steps 100000 --batch-size 6 --video-batch 2 --lpips 0 --image-gan 0 --video-gan 0 \
  --minutes 28 --eval-photos "$DATA/photos/val" --eval-videos "$DATA/video/val"
