"""Steps against quality for FlexTok's flow samplers on a folder of held-out photos (run by hand).

    .venv/bin/python benchmarks/flextok_samplers.py --data ~/.cache/tok-data/photos/val
    .venv/bin/python benchmarks/flextok_samplers.py --data DIR --inception-weights pt_inception-2015-12-05.pth

Encodes every photo once (resized and center-cropped to the model's resolution, as `tok encode`
does), then decodes the same tokens with each sampler and step count and prints one row per
setting: decoder network calls, PSNR and SSIM against the input (distortion: one step gives the
flow's mean prediction, the highest PSNR), the detail ratio (variance of the Laplacian of the
decoded image over the input's, averaged over images; 1.0 = as much fine detail as the input,
lower = blurrier; a weights-free stand-in for what rFID penalises), rFID when Inception weights
are given, decode seconds per image and the process's peak resident memory so far.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import tok
from tok.core.media import list_images, read_image
from tok.metrics.image import psnr_per_image, ssim_per_image
from tok.tokenizers.flextok.samplers import SAMPLERS, network_calls

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Per-image variance of the Laplacian of the luma (images in [0, 1], (B, 3, H, W))."""
    luma = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return F.conv2d(luma, LAPLACIAN.view(1, 1, 3, 3)).flatten(1).var(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="flextok-small")
    parser.add_argument("--weights")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--tokens", type=int, help="tokens per image (default: all)")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, help="only the first N photos")
    parser.add_argument("--inception-weights", help="FID Inception weights file: adds an rFID column")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = tok.load(args.model, args.weights)
    paths = list_images(args.data)[: args.limit]
    images = torch.cat([model.preprocess(read_image(p)[0]) for p in paths]).to(model.device)
    reference = model.postprocess(images).cpu()
    with torch.inference_mode():
        tokens = tok.Tokens.cat([model.encode(b, num_tokens=args.tokens) for b in images.split(args.batch_size)])
    reference_detail = laplacian_variance(reference)
    print(f"{model.name}: {len(paths)} photos from {args.data}, {model.config.image_size}px, "
          f"{tokens.streams[0].shape[1]} tokens each, guidance {args.guidance}, {args.threads} thread(s)")
    columns = "sampler  steps  calls   PSNR    SSIM  detail" + ("    rFID" if args.inception_weights else "") + "  s/image  peak MiB"
    print(columns)
    for sampler in args.samplers:
        for steps in args.steps:
            if sampler == "heun" and steps == 1:
                continue  # one Heun step is one Euler step
            start = time.perf_counter()
            with torch.inference_mode():
                decoded = torch.cat([
                    model.postprocess(model.decode(tokens[i : i + args.batch_size], steps=steps, guidance=args.guidance, sampler=sampler)).cpu()
                    for i in range(0, len(paths), args.batch_size)
                ])
            seconds = (time.perf_counter() - start) / len(paths)
            detail = (laplacian_variance(decoded) / reference_detail).mean().item()
            row = (f"{sampler:<7} {steps:>6} {network_calls(sampler, steps):>6} {psnr_per_image(reference, decoded).mean():>6.2f} "
                   f"{ssim_per_image(reference, decoded).mean():>7.3f} {detail:>7.3f}")
            if args.inception_weights:
                from tok.metrics.fid import rfid

                row += f" {rfid(reference, decoded, weights=args.inception_weights):>7.2f}"
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(row + f" {seconds:>8.3f} {peak:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
