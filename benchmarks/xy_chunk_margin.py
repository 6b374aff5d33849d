"""XY-Tokenizer on long audio: windowed vs one-pass tokens, and peak memory of the windowed path.

    python benchmarks/xy_chunk_margin.py --model xy-tokenizer-small --data ~/.cache/tok-data/speech/val --seconds 60
    python benchmarks/xy_chunk_margin.py --model xy-tokenizer-small --data ~/.cache/tok-data/speech/val --seconds 600 --skip-one-pass

Concatenates the clips of `--data` (repeated) into one signal, encodes it in windows of the
model's `max_seconds` (right context `--context-seconds`, default a third of the window) and, unless
`--skip-one-pass`, in one pass with the position tables extended; reports the share of differing
tokens, their distance in frames to the nearest window border, and the peak RSS. XY-Tokenizer's
encoder attends over its whole input, so windowing changes context everywhere, not only at the
borders: the report says how much that matters for a given model.
"""

from __future__ import annotations

import argparse
import json
import resource

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="xy-tokenizer-small")
    parser.add_argument("--weights")
    parser.add_argument("--data", required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--context-seconds", type=float)
    parser.add_argument("--skip-one-pass", action="store_true")
    args = parser.parse_args()

    from tok.api import load
    from tok.core.media import list_media
    from tok.core.media.audio import read_audio

    torch.set_num_threads(1)
    model = load(args.model, args.weights, device="cpu")
    rate = model.sample_rate
    clips = [read_audio(p, sample_rate=rate)[0][0] for p in list_media(args.data, "audio")]
    target = int(args.seconds * rate)
    audio = torch.cat(clips).repeat(target // sum(c.numel() for c in clips) + 1)[:target]
    windowed = model.encode(audio[None], context_seconds=args.context_seconds)
    decoded = model.decode(windowed, context_seconds=args.context_seconds)
    ids = windowed.streams[0][0]
    window, context = model._window_frames(args.context_seconds, False)
    report = {
        "model": model.name, "seconds": args.seconds, "frames": ids.shape[1], "window_frames": window, "context_frames": context,
        "decoded_samples": decoded.shape[1], "input_samples": target,
        "peak_rss_mib_windowed": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if not args.skip_one_pass:
        whole = model.encode(audio[None], one_piece=True).streams[0][0]
        borders = torch.tensor([start for start, _, _ in model._windows(ids.shape[1], window, context)[1:]])
        differ = (ids != whole).any(dim=0).nonzero()[:, 0]
        distance = (differ[:, None] - borders[None]).abs().min(dim=1).values if differ.numel() and borders.numel() else torch.zeros(0)
        report.update(
            borders=borders.numel(),
            differing_tokens=int((ids != whole).sum()),
            differing_fraction=round(float((ids != whole).float().mean()), 4),
            differing_fraction_first_codebook=round(float((ids[0] != whole[0]).float().mean()), 4),
            frames_with_a_difference=differ.numel(),
            median_distance_from_border=float(distance.float().median()) if distance.numel() else None,
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
