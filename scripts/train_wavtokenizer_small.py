"""How the bundled wavtokenizer-small was trained (CPU, 1 thread, nice, 30-minute cap).

    PYTHONPATH=src python scripts/train_wavtokenizer_small.py --data $TOK_DATA/speech/train \
        --init runs/wt-small/model.safetensors --out runs/wt-small-3

Run 1 (34 min, `tok train --model wavtokenizer-small --steps 5000 -b 8 --lr 1e-3 --gan-weight 0
--max-minutes 34` with a 64-dim latent) trained encoder and decoder, but its codebook collapsed
(22 codes used on held-out speech). This run starts from that run's weights wherever shapes
still match (the latent is now 8-dim: the encoder's last conv, the backbone's input conv and
the codebook are new), warms up 50 steps without the quantizer, initialises the codebook with
k-means on 4 batches of latents, and trains mel + 1000 x commitment (no GAN) for the rest.
"""

import argparse
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file

from tok.codecs.wavtokenizer import WavTokenizer, preset
from tok.training.wavtokenizer import WavTokenizerLossWeights, run

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True, type=Path)
parser.add_argument("--init", type=Path, help="weights to start from where shapes match")
parser.add_argument("--out", required=True, type=Path)
parser.add_argument("--minutes", type=float, default=28)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--continue-codebook", action="store_true",
                    help="keep --init's codebook too and train with the quantizer from the first step")
parser.add_argument("--multi-resolution-mel", action="store_true")
parser.add_argument("--vq-warmup-steps", type=int, default=50, help="steps without the quantizer (fresh codebook only)")
args = parser.parse_args()

torch.set_num_threads(args.threads)
logging.basicConfig(level=logging.INFO)
model = WavTokenizer(preset("small"))
if args.init:
    own = model.state_dict()
    start = {k: v.float() for k, v in load_file(str(args.init)).items()
             if k in own and own[k].shape == v.shape and (args.continue_codebook or "_codebook" not in k)}
    model.load_state_dict(start, strict=False)
    logging.getLogger(__name__).info("initialised %d of %d tensors from %s", len(start), len(own), args.init)
weights = WavTokenizerLossWeights(adversarial=0, feature_matching=0, vq_warmup_steps=0 if args.continue_codebook else args.vq_warmup_steps,
                                  multi_resolution_mel=args.multi_resolution_mel)
print(run(model, args.data, args.out, steps=20000, batch_size=8, lr=args.lr, weights=weights, max_minutes=args.minutes))
