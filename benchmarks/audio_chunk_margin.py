"""How far chunked encoding of long audio departs from one-piece encoding, and its peak memory.

    python benchmarks/audio_chunk_margin.py --model wavtokenizer-small --data ~/.cache/tok-data/speech/val \
        --minutes 1 --chunk-seconds 5 --context-seconds 1

Concatenates the clips of `--data` (repeated) into one long signal of `--minutes`, encodes it
with the model's chunking (`chunk_seconds` kept per chunk, `context_seconds` of audio on both
sides) and in one piece, and reports how many tokens differ, how far each difference lies from
the nearest chunk border (in frames), and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wavtokenizer-small")
    parser.add_argument("--weights")
    parser.add_argument("--data", required=True)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--chunk-seconds", type=float)
    parser.add_argument("--context-seconds", type=float)
    parser.add_argument("--skip-whole", action="store_true", help="only chunked encoding (memory of long files)")
    args = parser.parse_args()

    from tok.api import load
    from tok.core.media import list_media
    from tok.core.media.audio import read_audio

    torch.set_num_threads(1)
    model = load(args.model, args.weights, device="cpu")
    overrides = {k: v for k, v in {"chunk_seconds": args.chunk_seconds, "context_seconds": args.context_seconds}.items() if v}
    model.config = dataclasses.replace(model.config, **overrides)
    clips = [read_audio(p, sample_rate=model.sample_rate)[0][0] for p in list_media(args.data, "audio")]
    target = int(args.minutes * 60 * model.sample_rate)
    audio = torch.cat(clips).repeat(target // sum(c.numel() for c in clips) + 1)[:target]
    chunked = model.encode(audio[None]).streams[0][0, 0]
    report = {"model": model.name, "seconds": target / model.sample_rate, "frames": chunked.numel(), **overrides,
              "peak_rss_mib_chunked": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if not args.skip_whole:
        whole_model = load(args.model, args.weights, device="cpu")
        whole_model.config = dataclasses.replace(model.config, chunk_seconds=1e9)
        whole = whole_model.encode(audio[None]).streams[0][0, 0]
        borders = torch.tensor([p[2] for p in model._chunk_plan(chunked.numel())[1:]])
        differ = (chunked != whole).nonzero()[:, 0]
        distance = (differ[:, None] - borders[None]).abs().min(dim=1).values if differ.numel() and borders.numel() else torch.zeros(0)
        report.update(
            borders=borders.numel(), differing_tokens=differ.numel(), differing_fraction=round(differ.numel() / chunked.numel(), 5),
            max_distance_from_border=int(distance.max()) if distance.numel() else None,
            distance_histogram={str(d): int((distance == d).sum()) for d in sorted(set(distance.tolist()))},
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
