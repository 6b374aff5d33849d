"""VAT speed: shapes/s for encode and decode at batch 1 and 8, marching cubes timed separately,
peak memory; CPU by default, CUDA (bf16 autocast) when available.

    python benchmarks/vat_speed.py                         # vat-small, random weights are fine for speed
    python benchmarks/vat_speed.py --model vat-b --grid 128 --threads 16

encode = surface points (B, N, 6) -> ids; decode = ids -> occupancy logits on a G^3 grid;
mesh = scikit-image marching cubes on one decoded grid (CPU, per shape). The printed ratio
decode/mesh says which of the two dominates a full `tok decode`.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from tok.core.media.shape import grid_to_mesh
from tok.tokenizers.vat import VAT, count_parameters, preset


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vat-small")
    parser.add_argument("--grid", type=int, help="marching-cubes grid (default: the preset's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = preset(args.model.removeprefix("vat-"))
    grid = args.grid or config.mc_resolution
    model = VAT(config).eval().requires_grad_(False).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    print(f"{args.model}: {count_parameters(model) / 1e6:.2f} M parameters, {config.num_tokens} tokens, "
          f"{config.bytes_per_shape:g} bytes/shape, grid {grid}^3, device {device} ({args.threads} threads)")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for batch in (1, 8):
        points = torch.randn(batch, config.num_points, 6, device=device)
        with autocast:
            tokens = model.encode(points)
            t_encode = timed(lambda: model.encode(points), args.repeats, sync)  # noqa: B023 - called in this iteration
            t_decode = timed(lambda: model.decode(tokens, resolution=grid), args.repeats, sync)  # noqa: B023
            logits = model.decode(tokens, resolution=grid)[0].float().cpu().numpy()
        # Untrained weights may give no surface: mesh a sphere-like field of the same size instead.
        if logits.min() >= 0 or logits.max() <= 0:
            axis = np.linspace(-1, 1, grid, dtype=np.float32)
            logits = 0.8 - np.sqrt(sum(np.square(a) for a in np.meshgrid(axis, axis, axis, indexing="ij")))
        t_mesh = timed(lambda: grid_to_mesh(logits), args.repeats, lambda: None)  # noqa: B023
        print(f"batch {batch}: encode {batch / t_encode:8.1f} shapes/s | decode {batch / t_decode:8.2f} shapes/s | "
              f"marching cubes {1 / t_mesh:8.2f} shapes/s | decode/mesh time ratio {t_decode / batch / t_mesh:5.2f}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = f"peak host RSS {peak_rss:.0f} MiB"
    if device.type == "cuda":
        line += f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
    print(line)


if __name__ == "__main__":
    main()
