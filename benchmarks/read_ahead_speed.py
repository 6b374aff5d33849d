"""Folder encoding with and without reading files ahead (run by hand; prints figures and ratios).

    python benchmarks/read_ahead_speed.py [--models flextok-small,tokenflow-small] [--sizes 4000x3000,1600x1200]
        [--files 16] [--batch 8] [--workers 0,1,2] [--repeats 3] [--threads 2] [--device cpu]

`tok.api.encode_files` over a folder of JPEGs (made from tests/data/photo.jpg, upscaled with
noise so they compress like photos; quality 92), with `workers` background readers (0: the files
of a batch are read before it is encoded, in the same thread). The configurations alternate
within each round; the figure is the median seconds per file, the ratio the 0-worker time over
each other's. The .tok files of every configuration are checked to be identical.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from PIL import Image

import tok
import tok.api
from tok.core import Tokens

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "photo.jpg"


def make_photos(folder: Path, size: tuple[int, int], count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    base = Image.open(PHOTO).convert("RGB").resize(size, Image.BICUBIC)
    paths = []
    for i in range(count):
        noisy = np.asarray(base).astype(np.int16) + rng.integers(-8, 9, (size[1], size[0], 3))
        paths.append(folder / f"p{i:03d}.jpg")
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(paths[-1], quality=92)
    return paths


def encode_folder(model, paths: list[Path], out: Path, batch: int, workers: int) -> float:
    real = tok.api.read_ahead
    outputs = [out / f"{p.stem}.tok" for p in paths]
    with mock.patch.object(tok.api, "read_ahead", lambda read, chunks: real(read, chunks, workers)):
        start = time.perf_counter()
        for _ in tok.api.encode_files(model, paths, outputs, batch_size=batch):
            pass
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="flextok-small,tokenflow-small")
    parser.add_argument("--sizes", default="4000x3000,1600x1200")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workers = [int(w) for w in args.workers.split(",")]
    print(f"{args.files} files, batch {args.batch}, {args.threads} threads, {args.device}; seconds per file (median of {args.repeats})")
    print("| model | photo size | " + " | ".join(f"{w} readers" for w in workers) + " | " + " | ".join(f"{w} vs 0" for w in workers[1:]) + " |")
    print("| --- " * (2 + 2 * len(workers) - 1) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            folder = tmp / size
            folder.mkdir()
            paths = make_photos(folder, (w, h), args.files)
            for name in args.models.split(","):
                model = tok.load(name, device=args.device)
                outs = {n: tmp / f"{name}-{size}-{n}" for n in workers}
                for n in workers:  # warm-up
                    encode_folder(model, paths[: args.batch], outs[n], args.batch, n)
                times: dict[int, list[float]] = {n: [] for n in workers}
                for _ in range(args.repeats):
                    for n in workers:
                        times[n].append(encode_folder(model, paths, outs[n], args.batch, n))
                for p in paths:
                    first = Tokens.load(outs[workers[0]] / f"{p.stem}.tok")
                    for n in workers[1:]:
                        other = Tokens.load(outs[n] / f"{p.stem}.tok")
                        assert all(torch.equal(a, b) for a, b in zip(first.streams, other.streams)), f"{p.name}: ids differ with {n} readers"
                median = {n: statistics.median(t) for n, t in times.items()}
                ratios = [f"{median[workers[0]] / median[n]:.2f}×" for n in workers[1:]]
                print(f"| {name} | {w}×{h} | " + " | ".join(f"{median[n]:.3f}" for n in workers) + " | " + " | ".join(ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
