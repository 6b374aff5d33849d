"""HieraTok encode/decode speed and peak memory at batch 1 and 8 (run by hand).

    .venv/bin/python benchmarks/hieratok_speed.py                      # small + b, CPU (fp32)
    .venv/bin/python benchmarks/hieratok_speed.py --device cuda        # GPU, bf16 autocast

Random weights (speed does not depend on the values). Each configuration runs in a fresh
subprocess so CPU peak memory (max RSS, which includes the weights) is its own. Prints images/s,
peak memory, the batched/unbatched throughput ratio per image, and the cost of the scale-causal
mask: decode images/s with mask="full" divided by decode images/s with the mask (SDPA takes a
boolean mask; without one it can use its fastest kernels).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from timing import run_child, time_call  # benchmarks/timing.py


def measure(preset: str, batch: int, op: str, device: str, repeats: int, mask: str) -> dict:
    from tok.tokenizers.hieratok import HieraTok
    from tok.tokenizers.hieratok import preset as get_preset

    torch.manual_seed(0)
    model = HieraTok(get_preset(preset, mask=mask)).eval().requires_grad_(False).to(device)
    size = model.config.image_size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    tokens = model.encode(images)
    run = (lambda: model.encode(images)) if op == "encode" else (lambda: model.decode(tokens))
    seconds, peak_mib = time_call(run, device, repeats)
    return {"images_per_s": batch / seconds, "peak_mib": peak_mib}


def child(args, preset: str, batch: int, op: str, mask: str) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{preset},{batch},{op},{mask}", "--device", args.device, "--repeats", str(args.repeats), "--threads", str(args.threads)]
    return run_child(cmd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "b"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:  # child process: one configuration
        preset, batch, op, mask = args.one.split(",")
        print(json.dumps(measure(preset, int(batch), op, args.device, args.repeats, mask)))
        return
    print(f"device {args.device}, torch {torch.__version__}, threads {args.threads}")
    print(f"{'preset':<7} {'op':<7} {'batch':>5} {'img/s':>9} {'peak MiB':>9} {'batched/unbatched':>18} {'full/causal mask':>17}")
    for preset in args.presets:
        for op in args.ops:
            base = None
            for batch in args.batches:
                row = child(args, preset, batch, op, "scale_causal")
                base = base or row["images_per_s"]
                ratio = ""
                if op == "decode":
                    ratio = f"{child(args, preset, batch, op, 'full')['images_per_s'] / row['images_per_s']:.2f}x"
                print(f"{preset:<7} {op:<7} {batch:>5} {row['images_per_s']:>9.3f} {row['peak_mib']:>9.0f} {row['images_per_s'] / base:>17.2f}x {ratio:>17}", flush=True)


if __name__ == "__main__":
    main()
