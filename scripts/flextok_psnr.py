"""PSNR of a FlexTok model per token count on a folder of photos, against a bicubic thumbnail
that carries at least as many bits as the tokens (run by hand).

    .venv/bin/python scripts/flextok_psnr.py --data ~/.cache/tok-data/photos/val
    .venv/bin/python scripts/flextok_psnr.py --model flextok-small --weights runs/x/model.safetensors --steps 1 4

Each photo is resized (shorter side) and center-cropped to the model's resolution, as `tok encode`
does. The thumbnail baseline stores an s x s RGB image at 8 bits per channel, with the smallest
s whose 24 s^2 bits are >= the tokens' bits, and upsamples it with bicubic interpolation.
PSNR is over [0, 1] pixel values, averaged over images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import tok
from tok.core.media import list_images, read_image
from tok.metrics.image import psnr_per_image as psnr
from tok.metrics.image import thumbnail_baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="flextok-small")
    parser.add_argument("--weights")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--tokens", nargs="+", type=int, default=[1, 4, 16, 64, 256])
    parser.add_argument("--steps", nargs="+", type=int, default=[1])
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    model = tok.load(args.model, args.weights)
    paths = list_images(args.data)
    images = torch.cat([model.preprocess(read_image(p)[0]) for p in paths]).to(model.device)
    reference = model.postprocess(images)
    with torch.inference_mode():
        batches = images.split(args.batch_size)
        full = tok.Tokens.cat([model.encode(b) for b in batches])
        vae = torch.cat([model.postprocess(model.vae.decode(model.vae.encode(b))) for b in batches])
    print(f"{model.name}: {len(paths)} images from {args.data}, {model.config.image_size}px, guidance {args.guidance}")
    print(f"VAE alone (upper bound): {psnr(vae, reference).mean():.2f} dB")
    header = "tokens   bits  " + "  ".join(f"steps={s:<3}" for s in args.steps) + "  thumbnail (side, bits, PSNR)"
    print(header)
    for k in args.tokens:
        tokens = full.to("cpu")
        tokens = tok.Tokens([tokens.streams[0][:, :k]], tokens.layout, tokens.model, tokens.weights_digest, tokens.sources)
        scores = []
        for steps in args.steps:
            decoded = torch.cat(
                [model.postprocess(model.decode(tokens[i : i + args.batch_size], steps=steps, guidance=args.guidance)) for i in range(0, len(tokens), args.batch_size)]
            )
            scores.append(psnr(decoded, reference).mean().item())
        side, thumb = thumbnail_baseline(reference.cpu(), tokens.bits)
        print(f"{k:>6} {tokens.bits:>6.0f}  " + "  ".join(f"{s:>9.2f}" for s in scores) + f"  {side:>3}x{side:<3} {24 * side * side:>6} {thumb.mean():.2f}")


if __name__ == "__main__":
    main()
