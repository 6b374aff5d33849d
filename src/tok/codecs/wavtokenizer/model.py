"""WavTokenizer (Ji et al., arXiv 2408.16532): one 4096-entry codebook for 24 kHz audio.

    waveform (B, L) --SEANet encoder--> latents (B, 512, T) --EMA VQ--> ids (B, 1, T)
    ids --codebook--> features (B, 512, T) --Vocos backbone (pos_net + 12 AdaLN ConvNeXt)--> (B, T, 768)
        --ISTFT head--> waveform (B, T * hop)

Module names follow the official code (`feature_extractor.encodec.encoder`, `backbone`, `head`),
so official checkpoints load with one renaming step for the codebook buffers (weights.py).
The unused SEANet decoder of the official checkpoint is not built.

Lengths: T = ceil(L / hop); decode gives T * hop samples and `write_media` trims them back to the
source length. Long audio is encoded and decoded in chunks (bounded memory); items of different
lengths in one batch get exactly the tokens they get alone, because chunks are only batched with
chunks of the same length.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...core import Tokenizer, TokenLayout, Tokens, TokError
from ...core.media.audio import read_model_audio, write_model_audio
from ...core.quantize import VQQuantizer
from ...nn.istft import ISTFTHead
from ...nn.seanet import SEANetEncoder
from ...nn.vocos import VocosBackbone
from .config import WavTokenizerConfig

# Chunks encoded or decoded in one forward pass (bounds memory for long files and big batches).
MAX_CHUNKS_PER_PASS = 8
# Inference keeps the encoder's convolutions at about this many samples per pass, summed over
# the batch (same values as one pass: see SEANetEncoder.forward). Measured on 2 cores with 10 s
# clips: a batch of 8 in one piece ran at 1.16 s per clip, in 24 000-sample chunks at 0.36 s
# (one clip alone: 0.40 s).
SAMPLES_PER_PASS = 192_000
# Frames per nearest-code search: the (frames x 4096) distance matrix stays in cache.
FRAMES_PER_SEARCH = 1024


class EncodecFeatures(nn.Module):
    """`feature_extractor`: holds `encodec.encoder` (SEANet) and `encodec.quantizer` (EMA VQ)."""

    def __init__(self, config: WavTokenizerConfig):
        super().__init__()
        self.encodec = nn.Module()
        self.encodec.encoder = SEANetEncoder(
            channels=1, dimension=config.latent_dim, n_filters=config.n_filters, n_residual_layers=1,
            ratios=config.ratios, lstm=config.lstm_layers,
        )
        # EnCodec-style EMA codebook: decay 0.99, k-means init on the first training batch,
        # dead codes (EMA count < 2) re-seeded from the batch, commitment MSE, straight-through.
        self.encodec.quantizer = VQQuantizer(
            config.latent_dim, config.codebook_size, decay=config.decay, kmeans_init=True,
            kmeans_iters=config.kmeans_iters, threshold_ema_dead_code=config.dead_code_threshold,
            commitment_weight=1.0, rotation_trick=False,
        )


class WavTokenizer(Tokenizer):
    """WavTokenizer behind the tok interface.

    encode: waveform (B, L) at `config.sample_rate` in [-1, 1] -> Tokens, one `codebooks` stream (B, 1, T).
    decode: Tokens -> waveform (B, T * hop).
    forward (training): waveform (B, L) -> TokenizerOutput(recon (B, T * hop), tokens, {"commit": ...}).
    """

    modality = "audio"
    has_cpu_bf16 = True
    compile_parts = ("feature_extractor.encodec.encoder", "backbone")
    decode_only_parts = ("backbone",)  # the Vocos decoder; the SEANet encoder has no int8 layers

    def __init__(self, config: WavTokenizerConfig):
        super().__init__(config)
        self.feature_extractor = EncodecFeatures(config)
        self.backbone = VocosBackbone(
            config.latent_dim, config.backbone_dim, config.intermediate_dim, config.num_layers,
            adanorm_num_embeddings=config.adanorm_num_embeddings, use_pos_net=True,
        )
        self.head = ISTFTHead(config.backbone_dim, config.n_fft, config.hop_length, padding="same")

    # -- properties ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def layout(self) -> TokenLayout:
        c = self.config
        return TokenLayout(
            "codebooks", (c.codebook_size,), (("q", "t"),),
            rates={"tokens_per_second": c.tokens_per_second, "bits_per_second": c.bitrate},
            extra={"sample_rate": c.sample_rate, "hop_length": c.hop_length},
        )

    @property
    def encoder(self) -> nn.Module:
        return self.feature_extractor.encodec.encoder

    @property
    def quantizer(self) -> VQQuantizer:
        return self.feature_extractor.encodec.quantizer

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    def _cond_id(self, device: torch.device) -> Tensor:
        return torch.tensor([self.config.bandwidth_id], device=device)

    # -- network pieces --------------------------------------------------------------------------
    def encode_latents(self, audio: Tensor, chunk_samples: int | None = None) -> Tensor:
        """(B, L) -> latents (B, latent_dim, ceil(L / hop)); `chunk_samples`: see SEANetEncoder.forward."""
        return self.encoder(audio[:, None], chunk_samples)

    def quantize(self, latents: Tensor):
        return self.quantizer(latents.transpose(1, 2))

    def ids_to_features(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> codebook vectors (B, latent_dim, T)."""
        return self.quantizer.ids_to_codes(ids).transpose(1, 2)

    def decode_features(self, features: Tensor) -> Tensor:
        """(B, latent_dim, T) -> waveform (B, T * hop)."""
        return self.head(self.backbone(features, self._cond_id(features.device)))

    def forward(self, audio: Tensor):
        from ...core.tokenizer import TokenizerOutput

        out = self.quantize(self.encode_latents(audio))
        recon = self.decode_features(out.z_q.transpose(1, 2))
        return TokenizerOutput(recon, self.make_tokens([out.ids[:, None]]), {"commit": out.loss})

    # -- media -----------------------------------------------------------------------------------
    def preprocess(self, media: Tensor) -> Tensor:
        """Waveform (L,), (1, L) or (B, L) at the model rate -> float (B, L)."""
        if media.ndim == 1:
            media = media[None]
        if media.ndim != 2:
            raise TokError(f"expected audio (L,) or (B, L), got shape {tuple(media.shape)}")
        return media.float()

    def postprocess(self, x: Tensor) -> Tensor:
        return x

    def read_media(self, path: Path) -> tuple[Tensor, dict[str, Any]]:
        return read_model_audio(path, self.sample_rate)

    def encode_items(self, items: list[Tensor], sources: list[dict[str, Any]], **opts: Any) -> Tokens:
        """Encode waveforms of any lengths; shorter items' ids are right-padded with 0 up to the
        longest, and each source records its `num_samples`/`num_frames` so decode can cut them."""
        ids = self.encode_waveforms([item.to(self.device) for item in items])
        longest = max(len(i) for i in ids)
        batch = torch.zeros(len(ids), 1, longest, dtype=torch.long, device=self.device)
        for b, row in enumerate(ids):
            batch[b, 0, : len(row)] = row
        sources = [dict(s, num_frames=len(i)) for s, i in zip(sources, ids)]
        return self.make_tokens([batch], sources)

    def write_media(self, item: Tensor, path: Path, source: dict[str, Any] | None = None) -> Path:
        """Write one decoded waveform, trimmed to the source's length and at the source's sample rate."""
        return write_model_audio(item, path, self.sample_rate, source)

    # -- encode / decode -------------------------------------------------------------------------
    def _chunk_plan(self, num_frames: int) -> list[tuple[int, int, int, int]]:
        """Split frames [0, num_frames) into (piece_start, piece_end, keep_start, keep_end) frame
        ranges: each chunk keeps `chunk` frames and sees `context` frames on both sides."""
        c = self.config
        chunk = max(1, round(c.chunk_seconds * c.tokens_per_second))
        context = max(0, round(c.context_seconds * c.tokens_per_second))
        if num_frames <= chunk + context:
            return [(0, num_frames, 0, num_frames)]
        plan = []
        for start in range(0, num_frames, chunk):
            end = min(start + chunk, num_frames)
            plan.append((max(0, start - context), min(num_frames, end + context), start, end))
        return plan

    @staticmethod
    def _run_grouped(pieces: list[Tensor], fn) -> list[Tensor]:
        """Apply `fn` to pieces batched by equal length (so batching never changes a result)."""
        results: list[Tensor | None] = [None] * len(pieces)
        by_length: dict[int, list[int]] = {}
        for i, piece in enumerate(pieces):
            by_length.setdefault(piece.shape[-1], []).append(i)
        for indices in by_length.values():
            for k in range(0, len(indices), MAX_CHUNKS_PER_PASS):
                group = indices[k : k + MAX_CHUNKS_PER_PASS]
                out = fn(torch.stack([pieces[i] for i in group]))
                for i, row in zip(group, out):
                    results[i] = row
        return results

    @torch.inference_mode()
    def encode_waveforms(self, waves: list[Tensor]) -> list[Tensor]:
        """Waveforms (L_i,) -> ids (ceil(L_i / hop),) each, chunked for long inputs.

        Chunk borders: a chunk's kept tokens see `context_seconds` of audio on each side; tokens
        can still differ from a one-piece encoding near borders (the LSTM state and the
        conv padding differ). tests/codecs/test_wavtokenizer.py measures that margin.
        """
        hop = self.hop_length
        pieces, where = [], []
        for w, wave in enumerate(waves):
            if wave.ndim != 1 or wave.numel() == 0:
                raise TokError(f"expected a non-empty waveform (L,), got shape {tuple(wave.shape)}")
            frames = self.num_frames(wave.numel())
            for piece_start, piece_end, keep_start, keep_end in self._chunk_plan(frames):
                pieces.append(wave[piece_start * hop : piece_end * hop].float())
                where.append((w, keep_start - piece_start, keep_end - piece_start))

        def run(batch: Tensor) -> Tensor:
            with self.cpu_bf16_autocast(batch):
                latents = self.encode_latents(batch, chunk_samples=max(hop, SAMPLES_PER_PASS // len(batch)))
            # Nearest-code search in fp32 (bf16 would make ties), a slice of frames at a time.
            frames = latents.float().transpose(1, 2)
            rows = frames.reshape(-1, frames.shape[-1]).split(FRAMES_PER_SEARCH)
            with torch.autocast(batch.device.type, enabled=False):
                return torch.cat([self.quantizer(part[None]).ids[0] for part in rows]).view(frames.shape[:2])

        outputs = self._run_grouped(pieces, run)
        ids: list[list[Tensor]] = [[] for _ in waves]
        for (w, a, b), out in zip(where, outputs):
            ids[w].append(out[a:b])
        return [torch.cat(parts) for parts in ids]

    @torch.inference_mode()
    def encode(self, x: Tensor, *, sources: list[dict] | None = None) -> Tokens:
        """Waveforms (B, L) at the model rate -> Tokens (B, 1, ceil(L / hop))."""
        x = self.preprocess(x).to(self.device)
        ids = torch.stack(self.encode_waveforms(list(x)))[:, None]
        if sources is None:
            sources = [{"sample_rate": self.sample_rate, "num_samples": x.shape[-1]} for _ in range(x.shape[0])]
        return self.make_tokens([ids], sources)

    @torch.inference_mode()
    def decode_id_list(self, ids: list[Tensor]) -> list[Tensor]:
        """ids (T_i,) each -> waveforms (T_i * hop,), chunked like encoding for long sequences."""
        hop = self.hop_length
        pieces, where = [], []
        for i, row in enumerate(ids):
            for start, end, keep_start, keep_end in self._chunk_plan(row.shape[-1]):
                pieces.append(row[start:end])
                where.append((i, (keep_start - start) * hop, (keep_end - start) * hop))
        def run(batch: Tensor) -> Tensor:
            with self.cpu_bf16_autocast(batch):
                return self.decode_features(self.ids_to_features(batch)).float()

        outs = self._run_grouped(pieces, run)
        waves: list[list[Tensor]] = [[] for _ in ids]
        for (i, a, b), out in zip(where, outs):
            waves[i].append(out[a:b])
        return [torch.cat(parts) for parts in waves]

    @torch.inference_mode()
    def decode(self, tokens: Tokens, **opts: Any) -> Tensor:
        """Tokens (B, 1, T) -> waveform (B, T * hop) at `sample_rate`.

        Decoding is deterministic: a `seed` option (the CLI always passes one) is ignored; flow
        options of other families (`steps`, `guidance`) are refused.

        Items whose source records fewer frames (`num_frames`, padded batches) are decoded
        without the padding and zero-filled after their end.
        """
        unknown = sorted(set(opts) - {"seed"})
        if unknown:
            raise TokError(f"WavTokenizer decoding has no option {', '.join(unknown)}")
        self.check_tokens(tokens)
        ids = tokens.streams[0].to(self.device)
        if ids.shape[1] != 1:
            raise TokError(f"WavTokenizer has one codebook; got ids of shape {tuple(ids.shape)}")
        total = ids.shape[-1]
        lengths = [min(total, int(s.get("num_frames", total))) for s in tokens.sources]
        waves = self.decode_id_list([ids[b, 0, :n] for b, n in enumerate(lengths)])
        out = torch.zeros(len(waves), total * self.hop_length, device=self.device)
        for b, wave in enumerate(waves):
            out[b, : wave.shape[-1]] = wave
        return out


def build(config: WavTokenizerConfig) -> WavTokenizer:
    return WavTokenizer(config)
