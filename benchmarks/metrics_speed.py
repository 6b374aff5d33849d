"""Speed of the metric paths (run by hand; prints figures and ratios, asserts nothing).

    python benchmarks/metrics_speed.py [--images 64] [--size 256] [--inception PATH] [--utmos-seconds 10]

1. rFID: images/s of `tok.metrics.fid.rfid` on two folders vs `torch_fidelity.calculate_metrics`
   on the same folders and weights (ratio >= 0.9 means the wrapper costs nothing). Without
   --inception (and no cached file) a random-weight Inception file in the official layout is
   made: speed does not depend on the weight values.
2. UTMOS22 strong: real-time factor (compute seconds / audio seconds) of the full-size model
   (random weights unless --utmos PATH) on a batch of clips of different lengths.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch


def random_inception(path: Path) -> Path:
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), mock.patch.object(
        fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    # Batch-norm statistics from one batch of noise, so the features (and the FID) are not ~0.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net((torch.rand(2, 3, 64, 64) * 255).to(torch.uint8))
    torch.save(net.state_dict(), path)
    return path


def image_folders(root: Path, count: int, size: int) -> tuple[Path, Path]:
    from tok.core.media import write_image

    g = torch.Generator().manual_seed(0)
    a, b = root / "ref", root / "rec"
    for i in range(count):
        image = (torch.linspace(0, 1, size).view(1, 1, size) * torch.rand(3, 1, 1, generator=g) + 0.3 * torch.rand(3, size, size, generator=g)).clamp(0, 1)
        write_image(image, a / f"{i:04d}.png")
        write_image((image + 0.1 * torch.randn(image.shape, generator=g)).clamp(0, 1), b / f"{i:04d}.png")
    return a, b


def bench_rfid(args, root: Path) -> None:
    import torch_fidelity

    from tok.core import TokError
    from tok.metrics import fid as fidlib
    from tok.metrics.weights import INCEPTION_FID, resolve

    try:
        weights = resolve(INCEPTION_FID, args.inception, download=False)
        note = "real weights"
    except TokError:
        weights = random_inception(root / INCEPTION_FID.filename)
        note = "random weights (same speed)"
    ref, rec = image_folders(root, args.images, args.size)
    cuda = torch.cuda.is_available()
    fidlib.rfid(ref, rec, weights=weights, batch_size=args.batch_size)  # warm-up: builds the network, warms caches
    timings = {"tok": [], "torch-fidelity": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        ours = fidlib.rfid(ref, rec, weights=weights, batch_size=args.batch_size)
        timings["tok"].append(time.perf_counter() - t)
        t = time.perf_counter()
        theirs = torch_fidelity.calculate_metrics(
            input1=str(rec), input2=str(ref), fid=True, cuda=cuda, batch_size=args.batch_size, verbose=False, cache=False,
            feature_extractor_weights_path=str(weights),
        )["frechet_inception_distance"]
        timings["torch-fidelity"].append(time.perf_counter() - t)
    n = 2 * args.images
    best = {k: min(v) for k, v in timings.items()}
    print(f"rFID on 2 x {args.images} images of {args.size}px, batch {args.batch_size}, {'cuda' if cuda else 'cpu'}, {note}")
    print(f"  tok.metrics.fid.rfid         {n / best['tok']:8.2f} images/s  ({best['tok']:.2f} s)  FID {ours:.6f}")
    print(f"  torch_fidelity.calculate     {n / best['torch-fidelity']:8.2f} images/s  ({best['torch-fidelity']:.2f} s)  FID {theirs:.6f}")
    print(f"  speed ratio tok / torch-fidelity = {best['torch-fidelity'] / best['tok']:.3f}   |FID difference| = {abs(ours - theirs):.2e}")


def bench_utmos(args) -> None:
    from tok.metrics.utmos import UTMOS, UTMOS22Strong

    model = UTMOS22Strong() if args.utmos is None else None
    scorer = UTMOS(weights=args.utmos, model=model, batch_size=4)
    lengths = [args.utmos_seconds * f for f in (1.0, 0.8, 0.6, 0.9)]
    clips = [0.1 * torch.randn(int(16000 * s)) for s in lengths]
    scorer(clips[:1], 16000)  # warm-up
    t = time.perf_counter()
    scorer(clips, 16000)
    elapsed = time.perf_counter() - t
    audio = sum(lengths)
    print(f"UTMOS22 strong ({'random' if args.utmos is None else 'given'} weights) on {len(clips)} clips, {audio:.1f} s of 16 kHz audio, {scorer.device}")
    print(f"  {elapsed:.2f} s -> real-time factor {elapsed / audio:.4f} ({audio / elapsed:.1f}x faster than real time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--inception", type=Path)
    parser.add_argument("--utmos", type=Path)
    parser.add_argument("--utmos-seconds", type=float, default=10.0)
    parser.add_argument("--skip", choices=["rfid", "utmos"], action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if "rfid" not in args.skip:
            bench_rfid(args, Path(tmp))
        if "utmos" not in args.skip:
            bench_utmos(args)


if __name__ == "__main__":
    main()
