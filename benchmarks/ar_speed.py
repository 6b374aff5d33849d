"""AR sampling and training speed (run by hand).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ar_speed.py                  # small preset, CPU
    .venv/bin/python benchmarks/ar_speed.py --preset llamagen-b --device cuda --exact

Prints sampled tokens/s for 256 and 1024 tokens at batch 1 and 16, with and without the KV
cache, and the ratio cache / no cache (target: more than 5x at 1024 tokens on CPU), then
training tokens/s (forward, backward, AdamW step). Random weights: speed does not depend on
the values. Every figure is the fastest of `--repeats` runs (the machine may be shared).

Without the cache every step recomputes the whole prefix, so a 1024-token sample costs about
half a million token forwards. Unless `--exact` is given, the no-cache time is integrated from
the timed forward passes at `--probes` evenly spaced prefix lengths (one step at each length,
trapezoid rule over all lengths); the 256-token rows at batch 1 also run the full no-cache loop
(`exact 256`) so the estimate can be checked against a real measurement.
"""

from __future__ import annotations

import argparse
import time

import torch

from tok.core import TokenLayout
from tok.generators.gpt import GPT, count_parameters, preset
from tok.generators.patterns import build_pattern
from tok.generators.sampling import SamplingOptions, sample


def build(preset_name: str, length: int, vocab: int, device: str) -> GPT:
    torch.manual_seed(0)
    pattern = build_pattern(TokenLayout("sequence", (vocab,), (("n",),)), [(length,)])
    model = GPT(preset(preset_name, num_classes=10, dropout=0.0), pattern).to(device).eval()
    torch.nn.init.normal_(model.output.weight, std=0.02)
    return model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


@torch.inference_mode()
def estimate_uncached(model: GPT, batch: int, length: int, probes: int, device: str, repeats: int) -> float:
    """Seconds for a full no-cache sample, integrated from forwards at `probes` prefix lengths."""
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    ids = torch.zeros(batch, length, 1, dtype=torch.long, device=device)
    lengths = torch.linspace(1, length, probes).round().long().unique().tolist()
    model(ids[:, :8], labels, last=1)  # warm-up
    times = [min(timed(lambda n=n: choose_one(model(ids[:, :n], labels, last=1)), device) for _ in range(repeats)) for n in lengths]
    total = 0.0
    for (n0, t0), (n1, t1) in zip(zip(lengths, times), zip(lengths[1:], times[1:])):
        total += (t0 + t1) / 2 * (n1 - n0)
    return total + times[0]  # the first step


def choose_one(logits: torch.Tensor) -> torch.Tensor:
    # The sampling arithmetic of one step, so the estimate includes it.
    return logits.float().softmax(-1).cumsum(-1)


def sampling_rows(args) -> list[dict]:
    rows = []
    options = SamplingOptions(temperature=1.0, top_k=0, top_p=1.0)
    for length in args.lengths:
        model = build(args.preset, length, args.vocab, args.device)
        for batch in args.batches:
            labels = torch.zeros(batch, dtype=torch.long)
            sample(model, labels, options=options, num_steps=min(8, length), use_cache=True)  # warm-up
            # Best of `repeats`: on a shared machine the fastest run is the least disturbed one.
            cached = min(timed(lambda: sample(model, labels, options=options, use_cache=True), args.device) for _ in range(args.repeats))  # noqa: B023
            exact = None
            if args.exact or (length <= 256 and batch == 1):
                exact = min(timed(lambda: sample(model, labels, options=options, use_cache=False), args.device) for _ in range(args.repeats))  # noqa: B023
            uncached = exact if args.exact else estimate_uncached(model, batch, length, args.probes, args.device, args.repeats)
            rows.append({"tokens": length, "batch": batch, "cache": cached, "no_cache": uncached, "exact": exact})
            tokens = length * batch
            note = f"  (exact no-cache {tokens / exact:9.1f} tok/s)" if exact is not None and not args.exact else ""
            print(
                f"sample {length:5d} tokens  batch {batch:3d}:  cache {tokens / cached:9.1f} tok/s   "
                f"no cache {tokens / uncached:9.1f} tok/s   ratio {uncached / cached:6.1f}x{note}",
                flush=True,
            )
    return rows


def training_speed(args) -> None:
    length = args.train_length
    model = build(args.preset, length, args.vocab, args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    seq = torch.randint(0, args.vocab, (args.train_batch, length, 1), device=args.device)
    labels = torch.zeros(args.train_batch, dtype=torch.long, device=args.device)

    def step():
        loss = model.loss(seq, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    seconds = min(timed(step, args.device) for _ in range(args.repeats))
    tokens = args.train_batch * length
    print(f"train  {length:5d} tokens  batch {args.train_batch:3d}:  {tokens / seconds:9.1f} tok/s ({seconds:.2f} s/step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--vocab", type=int, default=16384, help="LlamaGen's codebook size")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--probes", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement; the fastest counts")
    parser.add_argument("--exact", action="store_true", help="run the full no-cache loop everywhere")
    parser.add_argument("--train-length", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    params = count_parameters(build(args.preset, 8, args.vocab, "cpu"))
    print(f"preset {args.preset} ({params / 1e6:.1f}M parameters, vocab {args.vocab}), {args.device}, {torch.get_num_threads()} threads")
    sampling_rows(args)
    training_speed(args)


if __name__ == "__main__":
    main()
