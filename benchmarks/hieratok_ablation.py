"""HieraTok's central claim, measured: multi-scale vs single-scale with the same training budget
(run by hand; CPU, one thread each, trains two models).

    nice -n 10 .venv/bin/python benchmarks/hieratok_ablation.py --train ~/.cache/tok-data/photos/train \
        --val ~/.cache/tok-data/photos/val --out runs/hieratok-ablation --steps 600 --minutes 10

On a shared machine, run the two variants as two processes at the same time (same load, same
wall-clock budget), then print the table:

    ... hieratok_ablation.py ... --variants multi-scale &  ... --variants single-scale & wait
    .venv/bin/python benchmarks/hieratok_ablation.py --out runs/hieratok-ablation --report

Both variants use the `hieratok-small` preset and differ only in the scale list: (1, 2, 4, 8)
with the scale-causal decoder mask vs (8,) (a plain ViT autoencoder). Same steps, batch size,
learning rate, seed and losses (L1, + LPIPS when its backbone is available; no GAN so the short
runs are not dominated by adversarial noise; no prefix dropout). Prints PSNR / SSIM (/ LPIPS)
on the val photos from the full token sequence and the ratio multi/single. The paper reports
multi-scale better (rFID 1.47 -> 1.07 at ImageNet scale); this prints what we measure.
Note the multi-scale latent holds 85 tokens (64 of them the finest grid) vs 64.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from hieratok_eval import evaluate, load_photos, lpips_backbone_available

from tok.core.weights import WeightSource
from tok.tokenizers.hieratok import HieraTok, load_weights, preset
from tok.training.hieratok import HieraTokLossWeights, run

VARIANTS = {
    "multi-scale": {"scales": (1, 2, 4, 8), "prefix_dropout": 0.0},
    "single-scale": {"scales": (8,), "prefix_dropout": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train")
    parser.add_argument("--val")
    parser.add_argument("--report", action="store_true", help="only print the table of finished variants")
    parser.add_argument("--out", default="runs/hieratok-ablation")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock cap per variant")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    weights = HieraTokLossWeights(lpips=1.0 if lpips_backbone_available() else 0.0, gan=0.0)
    for name in [] if args.report else args.variants:
        config = preset("small", **VARIANTS[name])
        out = Path(args.out) / name
        torch.manual_seed(0)
        start = time.monotonic()
        path = run(HieraTok(config), args.train, out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                   weights=weights, max_seconds=args.minutes * 60, mixed_precision="no", seed=0)
        seconds = time.monotonic() - start
        steps = json.loads((out / "summary.json").read_text())["steps"]
        model = HieraTok(config)
        load_weights(model, WeightSource("explicit", path))
        model.eval()
        full = evaluate(model, load_photos(model, args.val))["per_prefix"][-1]
        result = {**full, "train_seconds": round(seconds), "steps": steps}
        (out / "result.json").write_text(json.dumps(result, indent=2))
        print(f"{name}: {json.dumps(result)}", flush=True)
    results = {n: json.loads((Path(args.out) / n / "result.json").read_text()) for n in VARIANTS if (Path(args.out) / n / "result.json").is_file()}
    if len(results) == 2:
        m, s = results["multi-scale"], results["single-scale"]
        print(f"\n{'variant':<14}{'tokens':>8}{'steps':>7}{'seconds':>9}{'PSNR':>8}{'SSIM':>8}{'LPIPS':>8}")
        for name, r in results.items():
            lp = f"{r['lpips']:.3f}" if "lpips" in r else "n/a"
            print(f"{name:<14}{r['tokens']:>8}{r['steps']:>7}{r['train_seconds']:>9}{r['psnr']:>8.2f}{r['ssim']:>8.3f}{lp:>8}")
        print(f"PSNR multi - single: {m['psnr'] - s['psnr']:+.2f} dB; SSIM ratio multi/single: {m['ssim'] / s['ssim']:.3f}")


if __name__ == "__main__":
    main()
