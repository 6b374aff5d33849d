"""Reconstruction quality of a HieraTok model on a folder of photos, for the full sequence and
for every coarse prefix of scales, next to a bicubic thumbnail of at least as many bits (run by hand).

    .venv/bin/python scripts/hieratok_eval.py --data ~/.cache/tok-data/photos/val
    .venv/bin/python scripts/hieratok_eval.py --model hieratok-small --weights runs/x/model.safetensors --json out.json

Photos are resized (shorter side) and center-cropped to the model resolution, as `tok encode`
does. PSNR over [0, 1] pixels; SSIM with an 11-pixel Gaussian window (sigma 1.5) on each RGB
channel; LPIPS (VGG) only when torchvision's backbone is in torch's hub cache. Codebook usage:
distinct ids used over the whole folder, per scale, and as a fraction of the vocabulary. The
thumbnail stores an s x s RGB image at 8 bits per channel with the smallest s whose 24 s^2 bits
are >= the tokens' bits (log2(vocab) per token), upsampled with bicubic interpolation.
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F

import tok
from tok.core.media import list_images, read_image


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) for batches in [0, 1], averaged over channels."""
    coords = torch.arange(window, dtype=torch.float32) - window // 2
    g = torch.exp(-coords.pow(2) / (2 * sigma**2))
    g = (g / g.sum())
    kernel = (g[:, None] * g[None, :]).expand(a.shape[1], 1, window, window).to(a)
    blur = lambda x: F.conv2d(x, kernel, groups=a.shape[1])
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def lpips_backbone_available() -> bool:
    from tok.training.losses import lpips_backbone_file

    return lpips_backbone_file("vgg").is_file()


def lpips_fn():
    from tok.training.losses import LPIPSLoss

    if not lpips_backbone_available():
        return None
    model = LPIPSLoss("vgg")
    return lambda a, b: model.model(a * 2 - 1, b * 2 - 1).flatten()


def thumbnail(images: torch.Tensor, bits: float) -> tuple[int, torch.Tensor]:
    side = math.ceil(math.sqrt(bits / 24))
    small = F.interpolate(images, size=(side, side), mode="bicubic", antialias=True, align_corners=False)
    small = (small.clamp(0, 1) * 255).round() / 255
    return side, F.interpolate(small, size=images.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def load_photos(model, folder) -> torch.Tensor:
    return torch.cat([model.preprocess(read_image(p)[0]) for p in list_images(folder)])


@torch.inference_mode()
def evaluate(model, images: torch.Tensor, batch_size: int = 16) -> dict:
    """images: preprocessed (B, 3, S, S) in [-1, 1]. Returns metrics per number of scales."""
    reference = model.postprocess(images)
    lp = lpips_fn()
    vocab = model.quantizer.vocab_size
    ids = [model.encode(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    rows = []
    for k in range(1, model.num_scales + 1):
        recon = torch.cat([model.postprocess(model.decode(t, scales=k)) for t in ids])
        tokens = sum(model.config.scale_lengths[:k])
        bits = tokens * math.log2(vocab)
        side, thumb = thumbnail(reference, bits)
        row = {
            "scales": k, "tokens": tokens, "bits": round(bits, 1),
            "psnr": psnr(recon, reference).mean().item(), "ssim": ssim(recon, reference).mean().item(),
            "thumb_side": side, "thumb_psnr": psnr(thumb, reference).mean().item(), "thumb_ssim": ssim(thumb, reference).mean().item(),
        }
        if lp is not None:
            row["lpips"] = lp(reference, recon).mean().item()
            row["thumb_lpips"] = lp(reference, thumb).mean().item()
        rows.append(row)
    usage = []
    for k, side in enumerate(model.config.scales):
        used = torch.cat([t.streams[k].flatten() for t in ids]).unique().numel()
        usage.append({"scale": side, "distinct_ids": used, "positions": len(images) * side * side})
    all_ids = torch.cat([s.flatten() for t in ids for s in t.streams]).unique().numel()
    return {"images": len(images), "per_prefix": rows, "codebook": {"vocab": vocab, "distinct_ids": all_ids, "usage": all_ids / vocab, "per_scale": usage}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="hieratok-small")
    parser.add_argument("--weights")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = tok.load(args.model, args.weights, device="cpu")
    result = evaluate(model, load_photos(model, args.data))
    for r in result["per_prefix"]:
        lp = f" LPIPS {r['lpips']:.3f} (thumb {r['thumb_lpips']:.3f})" if "lpips" in r else " LPIPS n/a"
        print(
            f"scales 1..{r['scales']}: {r['tokens']:4d} tokens {r['bits']:7.0f} bits  PSNR {r['psnr']:.2f} SSIM {r['ssim']:.3f}{lp}"
            f"  | thumbnail {r['thumb_side']}x{r['thumb_side']}: PSNR {r['thumb_psnr']:.2f} SSIM {r['thumb_ssim']:.3f}"
        )
    cb = result["codebook"]
    print(f"codebook: {cb['distinct_ids']} of {cb['vocab']} ids used ({100 * cb['usage']:.2f} %) over {result['images']} images")
    print("  per scale: " + ", ".join(f"{u['scale']}x{u['scale']}: {u['distinct_ids']}/{u['positions']}" for u in cb["per_scale"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
