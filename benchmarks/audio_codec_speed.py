"""Audio codec encode/decode speed (real-time factor) and peak memory for 10 s of audio at batch 1 and 8.

    python benchmarks/audio_codec_speed.py                                   # every WavTokenizer and XY-Tokenizer preset
    python benchmarks/audio_codec_speed.py --models xy-tokenizer-small xy-tokenizer-official --batches 1
    python benchmarks/audio_codec_speed.py --models wavtokenizer-small --batches 1 8 --device cuda

RTF = compute seconds / audio seconds (below 1 is faster than real time; batch 8 counts 80 s of
audio). Random weights (speed does not depend on the values), so official presets need no
download. Each configuration runs in a fresh subprocess so CPU peak memory (max RSS) is its own;
on CUDA the peak is `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from timing import run_child, time_call  # benchmarks/timing.py

DEFAULT_MODELS = ["wavtokenizer-small", "wavtokenizer-small-320-24k-4096", "wavtokenizer-small-600-24k-4096"]
# XY-Tokenizer: the bundled small model and the official 520 M configuration (slow on a CPU:
# about 2x / 3x real time for encode / decode on one thread).
DEFAULT_MODELS += ["xy-tokenizer-small", "xy-tokenizer-official"]


def measure(name: str, batch: int, op: str, seconds: float, device: str, repeats: int) -> dict:
    from tok.api import list_models
    from tok.core import zoo

    list_models()
    card = zoo.get_card(name)
    torch.manual_seed(0)
    model = card.builder(card).eval().requires_grad_(False).to(device)
    model.name = card.name
    rate = model.sample_rate
    audio = 0.1 * torch.randn(batch, int(seconds * rate), device=device)
    tokens = model.encode(audio)
    run = (lambda: model.encode(audio)) if op == "encode" else (lambda: model.decode(tokens))
    elapsed, peak = time_call(run, device, repeats)
    return {"model": name, "batch": batch, "op": op, "rtf": elapsed / (batch * seconds), "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", nargs="+", default=["encode", "decode"], choices=["encode", "decode"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # child process: one configuration
        name, batch, op = args.one.split(",")
        print(json.dumps(measure(name, int(batch), op, args.seconds, args.device, args.repeats)))
        return
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, {args.seconds:g} s of audio per item")
    print(f"{'model':<34} {'op':<7} {'batch':>5} {'RTF':>8} {'x realtime':>10} {'peak MiB':>9} {'batched/unbatched':>18}")
    for name in args.models:
        for op in args.ops:
            base = None
            for batch in args.batches:
                cmd = [sys.executable, __file__, "--one", f"{name},{batch},{op}", "--seconds", str(args.seconds),
                       "--device", args.device, "--repeats", str(args.repeats)]
                row = run_child(cmd)
                base = base or row["rtf"]
                print(f"{name:<34} {op:<7} {batch:>5} {row['rtf']:>8.4f} {1 / row['rtf']:>10.1f} {row['peak_mib']:>9.0f} {base / row['rtf']:>17.2f}x", flush=True)


if __name__ == "__main__":
    main()
