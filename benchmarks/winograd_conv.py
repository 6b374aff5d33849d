"""Winograd F(4x4, 3x3) against PyTorch's direct 3x3 convolution on CPU (run by hand).

    .venv/bin/python benchmarks/winograd_conv.py                 # the decoder layer shapes below
    .venv/bin/python benchmarks/winograd_conv.py --threads 2 --repeats 5

For each layer shape (channels, map side) it times, interleaved, after one warm-up each: the direct
convolution on an NCHW input (what the official decoders run), the direct convolution on a
channels-last input, and `tok.nn.winograd.winograd_conv3x3` on a channels-last input (how
`use_winograd` networks run it) and on an NCHW one (what a strided gather of the input costs); it
prints the median time, the rate in
GFLOP/s of the direct algorithm's FLOPs (2 * 9 * C_in * C_out * H * W per image, so that the three
columns compare as throughput), the ratios to NCHW, and the max error of each against a float64
reference. Random weights scaled like a trained layer's (std 1/sqrt(9 C_in)).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from tok.nn.winograd import winograd_conv3x3

# (channels, map side): TokenFlow-B's pixel decoder (256 channels at 256² and 128², 512 at 64²
# and 32²) and its encoder's widest map (128 at 256²).
SHAPES = [(256, 256), (256, 128), (512, 64), (512, 32), (128, 256)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats}")
    print(f"{'C':>4} {'side':>5} | {'NCHW s':>7} {'GFLOP/s':>7} | {'NHWC s':>7} {'GFLOP/s':>7} {'x':>5} | "
          f"{'Winograd s':>10} {'GFLOP/s':>7} {'x':>5} | {'from NCHW s':>11} {'x':>5} | max err direct / Winograd")
    torch.manual_seed(0)
    with torch.inference_mode():
        for channels, side in SHAPES:
            x = torch.randn(args.batch, channels, side, side)
            weight = torch.randn(channels, channels, 3, 3) / (3 * channels**0.5)
            bias = torch.randn(channels) * 0.1
            x_cl = x.contiguous(memory_format=torch.channels_last)
            runs = {
                "nchw": lambda: F.conv2d(x, weight, bias, padding=1),
                "nhwc": lambda: F.conv2d(x_cl, weight, bias, padding=1),
                "winograd": lambda: winograd_conv3x3(x_cl, weight, bias),
                "winograd_nchw": lambda: winograd_conv3x3(x, weight, bias),
            }
            times = {name: [] for name in runs}
            for run in runs.values():
                run()  # warm-up
            for _ in range(args.repeats):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            med = {name: statistics.median(t) for name, t in times.items()}
            flops = 2 * 9 * channels * channels * side * side * args.batch
            exact = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
            err = {name: (runs[name]().double() - exact).abs().max().item() for name in ("nchw", "winograd")}
            print(f"{channels:>4} {side:>5} | {med['nchw']:>7.3f} {flops / med['nchw'] / 1e9:>7.0f} | "
                  f"{med['nhwc']:>7.3f} {flops / med['nhwc'] / 1e9:>7.0f} {med['nchw'] / med['nhwc']:>5.2f} | "
                  f"{med['winograd']:>10.3f} {flops / med['winograd'] / 1e9:>7.0f} {med['nchw'] / med['winograd']:>5.2f} | "
                  f"{med['winograd_nchw']:>11.3f} {med['nchw'] / med['winograd_nchw']:>5.2f} | "
                  f"{err['nchw']:.1e} / {err['winograd']:.1e}", flush=True)


if __name__ == "__main__":
    main()
