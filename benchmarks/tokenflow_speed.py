"""TokenFlow encode/decode speed and peak memory at batch 1 and 8 (run by hand).

    .venv/bin/python benchmarks/tokenflow_speed.py                      # small + b, CPU (or GPU)
    .venv/bin/python benchmarks/tokenflow_speed.py --presets b xl --device cuda --dtype bf16

Random weights (speed does not depend on the values). Prints images/s, peak memory and the
ratio of batched to unbatched throughput per image. Each configuration runs in a fresh
subprocess so the CPU peak memory (max RSS) is its own. `--dtype bf16` runs the towers and CNNs
under bf16 autocast on GPU; the codebook search stays in fp32.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from timing import run_child, time_call  # benchmarks/timing.py


def measure(preset: str, batch: int, op: str, device: str, dtype: str, repeats: int) -> dict:
    from tok.tokenizers.tokenflow import TokenFlow
    from tok.tokenizers.tokenflow import preset as get_preset

    torch.manual_seed(0)
    model = TokenFlow(get_preset(preset)).eval().requires_grad_(False).to(device)
    size = model.config.image_size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16")
    with autocast:
        tokens = model.encode(images)
    run = (lambda: model.encode(images)) if op == "encode" else (lambda: model.decode(tokens))
    seconds, peak_mib = time_call(run, device, repeats, lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bf16"))
    return {"preset": preset, "batch": batch, "op": op, "images_per_s": batch / seconds, "peak_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "b"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration
        preset, batch, op = args.one.split(",")
        print(json.dumps(measure(preset, int(batch), op, args.device, args.dtype, args.repeats)))
        return
    print(f"device {args.device} ({args.dtype}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<7} {'op':<7} {'batch':>5} {'img/s':>9} {'peak MiB':>9} {'batched/unbatched':>18}")
    for preset in args.presets:
        for op in args.ops:
            base = None
            for batch in args.batches:
                cmd = [sys.executable, __file__, "--one", f"{preset},{batch},{op}", "--device", args.device, "--dtype", args.dtype, "--repeats", str(args.repeats)]
                row = run_child(cmd)
                base = base or row["images_per_s"]
                print(f"{preset:<7} {op:<7} {batch:>5} {row['images_per_s']:>9.3f} {row['peak_mib']:>9.0f} {row['images_per_s'] / base:>17.2f}x", flush=True)


if __name__ == "__main__":
    main()
