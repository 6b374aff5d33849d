"""WavTokenizer configs: the two official releases (40 and 75 tokens/s) and presets of this project.

Official values come from ../shared/reference/models/wavtokenizer.md (jishengpeng/WavTokenizer
@ 5cf440d, `configs/wavtokenizer_smalldata_frame{40,75}_3s_nq1_code4096_dim512_kmeans200_attn.yaml`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ...core import TokError


@dataclass(frozen=True)
class WavTokenizerConfig:
    """WavTokenizer architecture and inference settings.

    Args:
        sample_rate: audio rate in and out (24 kHz for every release).
        ratios: SEANet downsampling ratios as the yaml lists them (`dowmsamples`); the encoder
            applies them reversed. hop = prod(ratios) samples per token.
        n_filters, latent_dim, lstm_layers: SEANet encoder width, latent width (= codebook dim), LSTM depth.
        codebook_size: entries of the single codebook (4096).
        backbone_dim, intermediate_dim, num_layers: Vocos backbone sizes.
        adanorm_num_embeddings: rows of the adaptive LayerNorms (4 "bandwidth ids").
        n_fft: ISTFT size of the head (window = n_fft, hop = prod(ratios)).
        kmeans_iters, decay, dead_code_threshold: EMA codebook training settings.
        bandwidth_id: adaptive LayerNorm row used at inference (0, as the official README).
        chunk_seconds, context_seconds: audio longer than `chunk_seconds` is encoded and decoded in
            chunks of that length, each seeing `context_seconds` of neighbouring audio on both
            sides (memory stays bounded; see `encode` for the token margin at chunk borders).
    """

    sample_rate: int = 24000
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_filters: int = 32
    latent_dim: int = 512
    lstm_layers: int = 2
    codebook_size: int = 4096
    backbone_dim: int = 768
    intermediate_dim: int = 2304
    num_layers: int = 12
    adanorm_num_embeddings: int = 4
    n_fft: int = 1280
    kmeans_iters: int = 200
    decay: float = 0.99
    dead_code_threshold: float = 2.0
    bandwidth_id: int = 0
    chunk_seconds: float = 30.0
    context_seconds: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "ratios", tuple(int(r) for r in self.ratios))
        if self.n_fft < self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise TokError(f"n_fft {self.n_fft} must be >= hop {self.hop_length} with an even difference ('same' padding)")
        if self.backbone_dim % 32:
            raise TokError(f"backbone_dim {self.backbone_dim} must be a multiple of 32 (GroupNorm with 32 groups)")

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @property
    def tokens_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bitrate(self) -> float:
        """Bits per second if every id were coded with log2(codebook_size) bits."""
        return self.tokens_per_second * math.log2(self.codebook_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratios"] = list(self.ratios)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WavTokenizerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TokError(f"unknown WavTokenizer config fields: {', '.join(sorted(unknown))}")
        return cls(**d)


PRESETS: dict[str, WavTokenizerConfig] = {
    # Official: 24 kHz, 75 tokens/s (hop 320), 0.9 kbps.
    "75": WavTokenizerConfig(),
    # Official: 24 kHz, 40 tokens/s (hop 600), 0.48 kbps.
    "40": WavTokenizerConfig(ratios=(6, 5, 5, 4), n_fft=2400),
    # Bundled CPU model of this project: same structure, narrow, 75 tokens/s.
    "small": WavTokenizerConfig(
        # An 8-dim latent (= codebook dim): with 64 dims the EMA codebook collapsed onto the
        # latents' mean in short CPU runs (in high dimensions the mean is nearer to every frame
        # than any other frame is), leaving 6-26 codes in use per batch.
        n_filters=8, latent_dim=8, lstm_layers=1, backbone_dim=96, intermediate_dim=288, num_layers=4,
        # Batches of 8 x 1 s give 600 frames for 4096 codes. A threshold of 0.02 let the codebook
        # collapse in a 34-minute CPU run (22 codes used on held-out speech); 1.0 re-seeds every
        # code used less than once per step on average from the current batch's latents.
        kmeans_iters=20, dead_code_threshold=1.0,
    ),
    # Test-sized architecture.
    "tiny": WavTokenizerConfig(
        ratios=(4, 2, 2, 2), n_filters=4, latent_dim=16, lstm_layers=1, codebook_size=64, backbone_dim=32,
        intermediate_dim=48, num_layers=2, n_fft=128, kmeans_iters=2, chunk_seconds=0.25, context_seconds=0.02,
    ),
}


def preset(name: str, **overrides: Any) -> WavTokenizerConfig:
    if name not in PRESETS:
        raise TokError(f"unknown WavTokenizer preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
