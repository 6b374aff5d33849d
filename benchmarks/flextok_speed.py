"""FlexTok encode/decode speed and peak memory at batch 1 and 8 (run by hand).

    .venv/bin/python benchmarks/flextok_speed.py                 # small + d12-d12, CPU or GPU
    .venv/bin/python benchmarks/flextok_speed.py --presets small d18-d28 --steps 25 --device cuda

Random weights (speed does not depend on the values). Prints images/s, peak memory and the
ratio batched/unbatched throughput per image. Each configuration runs in a fresh subprocess so
CPU peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from timing import run_child, time_call  # benchmarks/timing.py


def measure(preset: str, batch: int, op: str, steps: int, device: str, repeats: int) -> dict:
    from tok.tokenizers.flextok import FlexTok
    from tok.tokenizers.flextok import preset as get_preset

    torch.manual_seed(0)
    model = FlexTok(get_preset(preset)).eval().requires_grad_(False).to(device)
    size = model.config.image_size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    tokens = model.encode(images)
    run = (lambda: model.encode(images)) if op == "encode" else (lambda: model.decode(tokens, steps=steps))
    seconds, peak_mib = time_call(run, device, repeats)
    return {"preset": preset, "batch": batch, "op": op, "images_per_s": batch / seconds, "peak_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "d12-d12"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--steps", type=int, default=1, help="Euler steps per decode")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration
        preset, batch, op = args.one.split(",")
        print(json.dumps(measure(preset, int(batch), op, args.steps, args.device, args.repeats)))
        return
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, decode steps {args.steps}")
    print(f"{'preset':<9} {'op':<7} {'batch':>5} {'img/s':>9} {'peak MiB':>9} {'batched/unbatched':>18}")
    for preset in args.presets:
        for op in args.ops:
            base = None
            for batch in args.batches:
                cmd = [sys.executable, __file__, "--one", f"{preset},{batch},{op}", "--steps", str(args.steps), "--device", args.device, "--repeats", str(args.repeats)]
                row = run_child(cmd)
                base = base or row["images_per_s"]
                print(f"{preset:<9} {op:<7} {batch:>5} {row['images_per_s']:>9.3f} {row['peak_mib']:>9.0f} {row['images_per_s'] / base:>17.2f}x", flush=True)


if __name__ == "__main__":
    main()
