"""Train the bundled hieratok-small on the corpus photos (run by hand, CPU).

    nice -n 10 .venv/bin/python scripts/train_hieratok_small.py --data ~/.cache/tok-data/photos/train \
        --out runs/hieratok-small --minutes 30

LPIPS needs torchvision's VGG weights in torch's hub cache; pass --lpips 0 where they are absent.
Options mirror the ablation benchmark so its figures and the bundled model compare.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

import torch

from tok.tokenizers.hieratok import HieraTok, preset
from tok.training.hieratok import HieraTokLossWeights, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--scales", type=int, nargs="+", help="override the preset's scale list, e.g. 8 for single-scale")
    parser.add_argument("--mask", choices=["scale_causal", "full"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--lpips", type=float, default=0.0)
    parser.add_argument("--gan", type=float, default=0.1)
    parser.add_argument("--disc-start", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = {}
    if args.scales:
        overrides["scales"] = tuple(args.scales)
    if args.mask:
        overrides["mask"] = args.mask
    config = preset(args.preset, **overrides)
    if len(config.scales) == 1:
        config = replace(config, prefix_dropout=0.0)
    weights = HieraTokLossWeights(lpips=args.lpips, gan=args.gan, disc_start=args.disc_start)
    path = run(
        HieraTok(config), args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        weights=weights, max_seconds=args.minutes * 60, mixed_precision="no",
    )
    print(path)


if __name__ == "__main__":
    main()
