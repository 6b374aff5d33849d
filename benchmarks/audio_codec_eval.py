"""Reconstruction quality of an audio codec on a folder of held-out speech.

    python benchmarks/audio_codec_eval.py --model wavtokenizer-small --data ~/.cache/tok-data/speech/val

Per clip: encode + decode with the model (at its own rate), then compare with the original at
16 kHz (the decoded audio is resampled to 16 kHz and trimmed to the original length):

* STOI (pystoi, non-extended, 16 kHz) — WavTokenizer's paper computes STOI at 24 kHz; our
  corpus is 16 kHz speech, so both signals hold nothing above 8 kHz anyway.
* PESQ wide band (pesq package, 16 kHz); clips PESQ refuses (errors) are counted, not averaged.
* mel distance: mean |log-mel(decoded) - log-mel(original)|, 80 mels, n_fft 1024, hop 256 at
  16 kHz, magnitudes clipped at 1e-5 (natural log).
* tokens per second and bitrate from the token layout (ids x log2(vocab) / duration).

Uses pystoi and pesq (project dependencies). Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def log_mel(wave: torch.Tensor, mel) -> torch.Tensor:
    return mel(wave).clamp(min=1e-5).log()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights", help="weights file instead of the zoo's")
    parser.add_argument("--data", required=True, type=Path, help="folder of audio clips")
    parser.add_argument("--limit", type=int, help="only the first N clips")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    parser.add_argument("--cpu-bf16", action="store_true", help="the model's opt-in bf16 CPU inference")
    args = parser.parse_args(argv)

    import torchaudio
    from pesq import PesqError, pesq
    from pystoi import stoi

    from tok.api import load
    from tok.core.media import list_media
    from tok.core.media.audio import read_audio, resample

    torch.set_num_threads(1)
    model = load(args.model, args.weights, device="cpu")
    model.cpu_bf16 = args.cpu_bf16
    files = list_media(args.data, "audio")[: args.limit]
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=256, n_mels=80, power=1)
    rows, pesq_errors, seconds, encode_time, decode_time = [], 0, 0.0, 0.0, 0.0
    bits = tokens_total = 0.0
    for path in files:
        original, _ = read_audio(path, sample_rate=16000)
        item, source = model.read_media(path)
        start = time.perf_counter()
        tokens = model.encode_items([item], [source])
        encode_time += time.perf_counter() - start
        start = time.perf_counter()
        decoded = model.decode(tokens)[0, : source["num_samples"]]
        decode_time += time.perf_counter() - start
        decoded16 = resample(decoded, model.sample_rate, 16000)[: original.shape[-1]]
        decoded16 = torch.nn.functional.pad(decoded16, (0, original.shape[-1] - decoded16.shape[-1]))
        ref, deg = original[0].numpy().astype(np.float64), decoded16.numpy().astype(np.float64)
        row = {"file": path.name, "seconds": ref.size / 16000, "stoi": float(stoi(ref, deg, 16000, extended=False))}
        try:
            row["pesq_wb"] = float(pesq(16000, ref, deg, "wb"))
        except PesqError:  # e.g. clips without detectable speech
            pesq_errors += 1
        row["mel_distance"] = float((log_mel(decoded16[None].float(), mel) - log_mel(original.float(), mel)).abs().mean())
        rows.append(row)
        seconds += row["seconds"]
        tokens_total += tokens.num_tokens
        bits += tokens.bits
    pesq_values = [r["pesq_wb"] for r in rows if "pesq_wb" in r]
    summary = {
        "model": model.name,
        "clips": len(rows),
        "seconds": round(seconds, 2),
        "stoi": round(float(np.mean([r["stoi"] for r in rows])), 4),
        "pesq_wb": round(float(np.mean(pesq_values)), 4) if pesq_values else None,
        "pesq_errors": pesq_errors,
        "mel_distance": round(float(np.mean([r["mel_distance"] for r in rows])), 4),
        "tokens_per_second": round(tokens_total / seconds, 2),
        "bitrate_bps": round(bits / seconds, 1),
        "nominal": {k: round(v, 2) for k, v in model.layout.rates.items()},
        "encode_rtf": round(encode_time / seconds, 4),
        "decode_rtf": round(decode_time / seconds, 4),
    }
    text = json.dumps({"summary": summary, "clips": rows} if args.out else summary, indent=2)
    if args.out:
        args.out.write_text(text)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
