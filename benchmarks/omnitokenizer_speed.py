"""OmniTokenizer encode/decode speed and peak memory for images and video clips (run by hand).

    .venv/bin/python benchmarks/omnitokenizer_speed.py                        # small + imagenet_k600, CPU
    .venv/bin/python benchmarks/omnitokenizer_speed.py --presets imagenet_k600 --device cuda --dtype bf16

Random weights (speed does not depend on the values). Images are one-frame clips at the preset's
resolution; videos are one clip of `clip_frames` frames (17 for the releases, 9 for small).
Prints images/s or frames/s per batch size, peak memory (GPU: max allocated; CPU: max RSS of a
fresh subprocess per configuration) and the batched/unbatched throughput ratio. `--paths` also
times the explicit attention path against SDPA (the ratio the release code's choice costs).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import torch
from timing import run_child, time_call  # benchmarks/timing.py

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def measure(preset: str, media: str, batch: int, op: str, device: str, dtype: str, path: str, repeats: int) -> dict:
    from tok.tokenizers.omnitokenizer import OmniTokenizer
    from tok.tokenizers.omnitokenizer import preset as get_preset

    torch.manual_seed(0)
    config = replace(get_preset(preset), attention=path)
    model = OmniTokenizer(config).eval().requires_grad_(False).to(device)
    frames = 1 if media == "image" else config.clip_frames
    side = config.resolution
    x = torch.rand(batch, 3, frames, side, side, device=device) - 0.5
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32")
    with autocast:
        tokens = model.encode(x)
    run = (lambda: model.encode(x)) if op == "encode" else (lambda: model.decode(tokens))
    seconds, peak_mib = time_call(run, device, repeats, lambda: torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32"))
    return {"per_s": batch * frames / seconds, "peak_mib": peak_mib, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "imagenet_k600"])
    parser.add_argument("--media", nargs="+", default=["image", "video"], choices=["image", "video"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES))
    parser.add_argument("--paths", nargs="+", default=["sdpa"], choices=["sdpa", "explicit"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration
        preset, media, batch, op, path = args.one.split(",")
        print(json.dumps(measure(preset, media, int(batch), op, args.device, args.dtype, path, args.repeats)))
        return
    print(f"device {args.device}, dtype {args.dtype}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'preset':<14} {'media':<6} {'op':<7} {'path':<9} {'batch':>5} {'items/s':>9} {'unit':<9} {'peak MiB':>9} {'vs batch 1':>10} {'vs sdpa':>8}")
    for preset in args.presets:
        for media in args.media:
            unit = "images/s" if media == "image" else "frames/s"
            for op in args.ops:
                base: dict[int, float] = {}
                for path in args.paths:
                    first = None
                    for batch in args.batches:
                        cmd = [
                            sys.executable, __file__, "--one", f"{preset},{media},{batch},{op},{path}", "--device", args.device,
                            "--dtype", args.dtype, "--repeats", str(args.repeats),
                        ]
                        row = run_child(cmd)
                        first = first or row["per_s"]
                        base.setdefault(batch, row["per_s"])
                        print(
                            f"{preset:<14} {media:<6} {op:<7} {path:<9} {batch:>5} {row['per_s']:>9.2f} {unit:<9} {row['peak_mib']:>9.0f} "
                            f"{row['per_s'] / first:>9.2f}x {row['per_s'] / base[batch]:>7.2f}x",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
