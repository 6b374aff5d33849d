"""Token statistics: codebook usage, perplexity / entropy, bits per pixel or second, tokens per input.

Dataset-level definitions (metrics.md §8): ids of every stream are counted over the whole
evaluation set, then

- usage = (#codes seen at least once) / K                    (OmniTokenizer's definition)
- entropy = −Σ p_k log2 p_k bits (≤ log2 K), normalised entropy = entropy / log2 K
- perplexity = 2^entropy = exp(−Σ p_k ln p_k), in [1, K] (K = uniform use)
- bits per token = Σ over streams of log2(vocab) · tokens of that stream / tokens in all streams
- bits per input = tokens · log2(vocab) summed over streams (`Tokens.bits`); bits per pixel =
  bits / (H·W) of the model input; bits per second = bits / duration (audio).

Each stream is counted separately; `compute()` reports the per-stream values and, for the
headline numbers, the first stream (FlexTok and most tokenizers have one).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..core.errors import TokError
from ..core.tokens import Tokens


class CodebookStats:
    """Accumulate id histograms over batches of `Tokens` with `update`, then `compute`."""

    def __init__(self) -> None:
        self.counts: list[Tensor] | None = None
        self.vocab_sizes: tuple[int, ...] = ()
        self.items = 0
        self.tokens = 0
        self.bits = 0.0

    def update(self, tokens: Tokens) -> None:
        if self.counts is None:
            self.vocab_sizes = tokens.layout.vocab_sizes
            self.counts = [torch.zeros(v, dtype=torch.int64) for v in self.vocab_sizes]
        elif tokens.layout.vocab_sizes != self.vocab_sizes:
            raise TokError(f"tokens with vocabularies {tokens.layout.vocab_sizes} mixed with {self.vocab_sizes}")
        for counts, stream, vocab in zip(self.counts, tokens.streams, self.vocab_sizes):
            counts += torch.bincount(stream.detach().flatten().long().cpu(), minlength=vocab)
        self.items += tokens.batch_size
        self.tokens += tokens.num_tokens * tokens.batch_size
        self.bits += tokens.bits * tokens.batch_size

    def compute(self) -> dict[str, Any]:
        if self.counts is None or self.items == 0:
            raise TokError("no tokens were counted")
        streams = [stream_stats(c) for c in self.counts]
        head = streams[0]
        return {
            "codebook_usage": head["usage"],
            "entropy_bits": head["entropy_bits"],
            "normalized_entropy": head["normalized_entropy"],
            "perplexity": head["perplexity"],
            "tokens_per_input": self.tokens / self.items,
            "bits_per_input": self.bits / self.items,
            "count": self.items,
            "streams": streams,
        }

    def histogram(self, stream: int = 0) -> Tensor:
        if self.counts is None:
            raise TokError("no tokens were counted")
        return self.counts[stream].clone()


def stream_stats(counts: Tensor) -> dict[str, float]:
    """Usage, entropy, perplexity of one id histogram (K = len(counts))."""
    total = int(counts.sum())
    vocab = counts.numel()
    if total == 0:
        raise TokError("empty id histogram")
    p = counts[counts > 0].double() / total
    entropy = float(-(p * p.log2()).sum())
    return {
        "vocab_size": vocab,
        "codes_used": int((counts > 0).sum()),
        "usage": float((counts > 0).sum()) / vocab,
        "entropy_bits": entropy,
        "normalized_entropy": entropy / math.log2(vocab) if vocab > 1 else 0.0,
        "perplexity": 2.0**entropy,
    }


def codebook_usage(tokens: Tokens) -> float:
    """Fraction of the first stream's codes used at least once in `tokens`."""
    stats = CodebookStats()
    stats.update(tokens)
    return stats.compute()["codebook_usage"]


def perplexity(tokens: Tokens) -> float:
    stats = CodebookStats()
    stats.update(tokens)
    return stats.compute()["perplexity"]


def bits_per_pixel(tokens: Tokens, height: int, width: int) -> float:
    """Bits of one item (log2(vocab) per token) over the pixels of the model input."""
    if height <= 0 or width <= 0:
        raise TokError(f"image size must be positive, got {height}x{width}")
    return tokens.bits / (height * width)


def bits_per_second(tokens: Tokens, seconds: float) -> float:
    """Bitrate of one item of `seconds` duration (audio, video)."""
    if seconds <= 0:
        raise TokError(f"duration must be positive, got {seconds}")
    return tokens.bits / seconds
