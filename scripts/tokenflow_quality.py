"""Reconstruction quality of a TokenFlow model at every prefix of whole scales, against a
bicubic thumbnail that carries at least as many bits (run by hand).

    .venv/bin/python scripts/tokenflow_quality.py --data ~/.cache/tok-data/photos/val
    .venv/bin/python scripts/tokenflow_quality.py --model tokenflow-small --weights runs/x/model.safetensors

Each photo is resized (shorter side) and center-cropped to the model's resolution, as `tok encode`
does. Prefix k keeps the tokens of the first k scales (k log2(K)-bit ids). The thumbnail stores an
s x s RGB image at 8 bits per channel, with the smallest s whose 24 s^2 bits are >= the tokens'
bits, and upsamples it with bicubic interpolation. PSNR and SSIM (Gaussian window 11, sigma 1.5)
are over [0, 1] pixels, averaged over images; LPIPS (VGG) is reported when its backbone weights
are on this machine. Codebook usage: distinct ids among all ids of the prefix over the val set,
divided by the codebook size.
"""

from __future__ import annotations

import argparse
import math

import torch

import tok
from tok.core.media import list_images, read_image
from tok.metrics.image import bits_matched_thumbnail, psnr_per_image, ssim_per_image


def lpips_metric():
    from tok.core import TokError
    from tok.training.losses import LPIPSLoss

    try:
        model = LPIPSLoss()
    except TokError as e:
        print(f"LPIPS: n/a ({e})")
        return None
    return lambda a, b: model.model(a * 2 - 1, b * 2 - 1).flatten(1).mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="tokenflow-small")
    parser.add_argument("--weights")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model = tok.load(args.model, args.weights, args.device)
    images = torch.cat([model.preprocess(read_image(p)[0]) for p in list_images(args.data)])
    images01 = (images + 1) / 2
    lpips = lpips_metric()
    ssim = lambda x: ssim_per_image(images01, x, gaussian=True, win_size=11, sigma=1.5).mean()  # the docstring's SSIM
    with torch.inference_mode():
        ids = torch.cat([torch.cat([s.flatten(1) for s in model.encode(images[i : i + 8]).streams], 1) for i in range(0, len(images), 8)])
    scales, vocab = model.config.scales, model.config.codebook_size
    print(f"{args.model}: {len(images)} images at {model.config.image_size} px, scales {list(scales)}, {vocab} codes")
    header = f"{'scales':>6} {'tokens':>6} {'bits':>6} | {'PSNR':>6} {'SSIM':>6} {'LPIPS':>6} {'usage':>6} | {'thumb':>5} {'PSNR':>6} {'SSIM':>6} {'LPIPS':>6}"
    print(header)
    for k in range(1, len(scales) + 1):
        n = sum(s * s for s in scales[:k])
        bits = n * math.log2(vocab)
        with torch.inference_mode():
            recon = torch.cat([model.postprocess(model.decode(ids[i : i + 8, :n])) for i in range(0, len(images), 8)])
        side, thumb = bits_matched_thumbnail(images01, bits)
        usage = ids[:, :n].unique().numel() / vocab
        lp = lambda x: f"{lpips(images01, x).mean().item():6.3f}" if lpips else f"{'n/a':>6}"
        print(
            f"{k:>6} {n:>6} {bits:>6.0f} | {psnr_per_image(images01, recon).mean():6.2f} {ssim(recon):6.3f} {lp(recon)} {usage:6.1%} | "
            f"{side:>2}x{side:<2} {psnr_per_image(images01, thumb).mean():6.2f} {ssim(thumb):6.3f} {lp(thumb)}"
        )


if __name__ == "__main__":
    main()
