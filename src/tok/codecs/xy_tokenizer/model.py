"""XY-Tokenizer (Gong et al., arXiv 2506.23325): a dual-tower 12.5 Hz speech codec with 8 x 1024 RVQ.

Data flow (official attribute names, so official checkpoints load key by key):

    wav 16 kHz -> log-mel 100 Hz -> semantic_encoder -> semantic_encoder_adapter --+
                                 -> acoustic_encoder ---------------------------- concat
    -> pre_rvq_adapter (50 Hz) -> downsample (12.5 Hz) -> quantizer (8 x 1024)
    -> post_rvq_adapter -> upsample (50 Hz) -> acoustic_decoder (100 Hz) -> vocos -> wav 16 kHz

Unlike the official code, any length works: no fixed 30-s window, every layer masks padding, and
a batch of different lengths gives each item the tokens it gets alone. Audio longer than
`config.max_seconds` is cut into windows that overlap by `context_seconds` of right context (the
official scheme), whose codes and audio are stitched without cross-fade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ...core.errors import TokError
from ...core.tokenizer import Tokenizer, TokenizerOutput
from ...core.media.audio import read_model_audio, write_model_audio
from ...core.tokens import TokenLayout, Tokens
from ...nn.vocos import Vocos
from .config import XYTokenizerConfig
from .layers import (
    Adapter,
    AudioDecoder,
    AudioEncoder,
    ResidualDownConv,
    UpConv,
)
from .mel import WhisperLogMel
from .quantizer import XYResidualVQ


class XYTokenizer(Tokenizer):
    modality = "audio"
    has_cpu_bf16 = True
    compile_parts = ("semantic_encoder", "semantic_encoder_adapter", "acoustic_encoder", "pre_rvq_adapter", "downsample",
                     "post_rvq_adapter", "upsample", "acoustic_decoder", "vocos.backbone")

    def __init__(self, config: XYTokenizerConfig):
        super().__init__(config)
        c = config
        self.name = "xy-tokenizer"
        tower = {"num_heads": c.num_heads, "ffn_dim": c.ffn_dim}
        p50, p12 = c.positions_50hz, c.positions_50hz // c.downsample
        self.mel = WhisperLogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels)
        self.semantic_encoder = AudioEncoder(c.n_mels, c.dim, c.semantic_layers, max_positions=p50, **tower)
        self.semantic_encoder_adapter = Adapter(c.dim, c.dim, c.dim, c.semantic_adapter_layers, max_positions=p50, **tower)
        self.acoustic_encoder = AudioEncoder(c.n_mels, c.dim, c.acoustic_layers, max_positions=p50, **tower)
        self.pre_rvq_adapter = Adapter(2 * c.dim, c.dim, c.dim, c.pre_rvq_layers, max_positions=p50, **tower)
        self.downsample = ResidualDownConv(c.dim, c.downsample)
        wide = c.dim * c.downsample
        self.quantizer = XYResidualVQ(wide, c.rvq_dim, wide, c.num_quantizers, c.codebook_size, c.kmeans_init)
        self.post_rvq_adapter = Adapter(wide, c.dim, wide, c.post_rvq_layers, max_positions=p12, **tower)
        self.upsample = UpConv(c.dim, c.downsample)
        self.acoustic_decoder = AudioDecoder(c.n_mels, c.dim, c.decoder_layers, max_positions=p50, **tower)
        self.vocos = Vocos(c.n_mels, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_layers, c.vocos_n_fft, c.vocos_hop_length, "same")

    @property
    def device(self) -> torch.device:
        return self.vocos.head.out.weight.device

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def layout(self) -> TokenLayout:
        c = self.config
        return TokenLayout(
            kind="codebooks",
            vocab_sizes=(c.codebook_size,),
            axes=(("q", "t"),),
            rates={"frames_per_second": c.frame_rate, "tokens_per_second": c.tokens_per_second, "bits_per_second": c.bitrate},
            extra={"sample_rate": c.sample_rate, "num_quantizers": c.num_quantizers, "frame_samples": c.frame_samples},
        )

    # -- tensor paths ----------------------------------------------------------------------------
    def encode_latents(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """wav (B, L) at 16 kHz + lengths -> pre-quantizer latents (B, 4 dim, T) + code lengths (B,)."""
        mel, mel_lengths = self.mel(wav, lengths)
        semantic, lengths50 = self.semantic_encoder(mel, mel_lengths)
        semantic, _ = self.semantic_encoder_adapter(semantic, lengths50)
        acoustic, _ = self.acoustic_encoder(mel, mel_lengths)
        mixed, _ = self.pre_rvq_adapter(torch.cat([semantic, acoustic], dim=1), lengths50)
        return self.downsample(mixed, lengths50)

    def decode_latents(self, z_q: Tensor, lengths: Tensor) -> Tensor:
        """Quantized latents (B, 4 dim, T) + code lengths -> waveform (B, T * frame_samples).

        Frames past an item's length are padding; the vocoder's convolutions let them leak into
        the item's last ~80 ms, which is why `decode` groups items by length.
        """
        x, lengths = self.post_rvq_adapter(z_q, lengths)
        x, lengths = self.upsample(x, lengths)
        features, _ = self.acoustic_decoder(x, lengths)
        return self.vocos(features)

    def forward(self, wav: Tensor, lengths: Tensor | None = None) -> TokenizerOutput:
        """Training path: waveform (B, L) -> reconstruction (B, T * frame_samples), commitment loss."""
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[1], device=wav.device, dtype=torch.long)
        frames = torch.div(lengths, self.config.frame_samples, rounding_mode="floor")
        z, _ = self.encode_latents(wav, lengths)
        z = z[:, :, : int(frames.max())]
        z_q, _, commitment = self.quantizer(z, frames)
        recon = self.decode_latents(z_q, frames)
        return TokenizerOutput(recon, None, {"commitment": commitment})

    # -- media -------------------------------------------------------------------------------------
    def preprocess(self, media: Tensor) -> Tensor:
        """Waveform (L,), (1, L) or (B, L) at the model rate -> (B, L) float32."""
        wav = torch.as_tensor(media).float()
        if wav.ndim == 1:
            wav = wav[None]
        if wav.ndim != 2:
            raise TokError(f"expected a waveform (L,) or (B, L), got shape {tuple(wav.shape)}")
        return wav

    def postprocess(self, x: Tensor) -> Tensor:
        return x.clamp(-1.0, 1.0)

    def read_media(self, path: Path) -> tuple[Tensor, dict[str, Any]]:
        return read_model_audio(path, self.config.sample_rate)

    def encode_items(self, items: list[Tensor], sources: list[dict[str, Any]], **opts: Any) -> Tokens:
        lengths = torch.tensor([len(x) for x in items])
        wav = torch.zeros(len(items), int(lengths.max()))
        for i, x in enumerate(items):
            wav[i, : len(x)] = x
        return self.encode(wav, lengths=lengths, sources=sources, **opts)

    def write_media(self, item: Tensor, path: Path, source: dict[str, Any] | None = None) -> Path:
        """Write one decoded waveform, trimmed to the source's length, at the source's sample rate
        (a 44.1 kHz input comes back as 44.1 kHz with its sample count)."""
        return write_model_audio(item, path, self.config.sample_rate, source)

    # -- tokens ------------------------------------------------------------------------------------
    def num_frames(self, num_samples: Tensor, pad_tail: bool = True) -> Tensor:
        """Code frames for `num_samples`: ceil with `pad_tail` (the tail is zero-padded and coded),
        floor without (the official count, which drops a tail shorter than one frame)."""
        f = self.config.frame_samples
        return torch.div(num_samples + (f - 1 if pad_tail else 0), f, rounding_mode="floor")

    def _windows(self, total: int, window: int | None, context: int) -> list[tuple[int, int, int]]:
        """(start, stop, keep) frame windows covering [0, total): each keeps its first `keep` frames."""
        if window is None or total <= window:
            return [(0, total, total)]
        keep = window - context
        out, start = [], 0
        while start + window < total:
            out.append((start, start + window, keep))
            start += keep
        out.append((start, total, total - start))
        return out

    def _window_frames(self, context_seconds: float | None, one_piece: bool) -> tuple[int | None, int]:
        """Window and right-context lengths in frames; the default context is a third of the
        window (the official 10 s of 30 s)."""
        c = self.config
        if one_piece:
            return None, 0
        if context_seconds is None:
            context_seconds = c.max_seconds / 3
        context = round(context_seconds * c.frame_rate)
        if not 0 <= context < c.window_frames:
            raise TokError(f"context of {context_seconds} s must lie in [0, {c.max_seconds}) s")
        return c.window_frames, context

    @torch.inference_mode()
    def encode(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        sources: list[dict[str, Any]] | None = None,
        *,
        pad_tail: bool = True,
        context_seconds: float | None = None,
        one_piece: bool = False,
        batch_size: int = 8,
    ) -> Tokens:
        """Waveform (B, L) at 16 kHz (+ valid lengths) -> Tokens with ids (B, 8, T).

        Items of different lengths are padded to the longest; each item's source records
        `num_frames`, `num_samples` and `sample_rate`, and its padded frames hold id 0.
        Audio longer than `max_seconds` is encoded in windows of `max_seconds` whose last
        `context_seconds` only serve as right context (`one_piece=True` encodes in one pass, with
        position tables extended past the trained length). Windows run `batch_size` at a time.
        """
        wav = self.preprocess(x).to(self.device)
        batch = wav.shape[0]
        lengths = torch.full((batch,), wav.shape[1]) if lengths is None else torch.as_tensor(lengths).cpu().long()
        if len(lengths) != batch or int(lengths.max()) > wav.shape[1]:
            raise TokError(f"{len(lengths)} lengths (max {int(lengths.max())}) for a batch of {batch} x {wav.shape[1]} samples")
        if int(lengths.min()) < 1:
            raise TokError("cannot encode empty audio")
        frames = self.num_frames(lengths, pad_tail)
        if int(frames.min()) < 1:
            raise TokError(f"audio shorter than one code frame ({self.config.frame_samples} samples) has no tokens without pad_tail")
        window, context = self._window_frames(context_seconds, one_piece)
        f = self.config.frame_samples
        segments = [(i, *w) for i in range(batch) for w in self._windows(int(frames[i]), window, context)]
        ids = torch.zeros(batch, self.config.num_quantizers, int(frames.max()), dtype=torch.long)
        written = [0] * batch
        for first in range(0, len(segments), batch_size):
            group = segments[first : first + batch_size]
            # A window ends at its last frame, except the item's last window, which also takes
            # the tail shorter than a frame (zero-padded to a whole frame with `pad_tail`).
            seg_len = torch.tensor([
                max((stop - start) * f if pad_tail else 0, int(lengths[i]) - start * f) if stop == int(frames[i]) else (stop - start) * f
                for i, start, stop, _ in group
            ])
            seg_frames = torch.tensor([stop - start for _, start, stop, _ in group])
            chunk = wav.new_zeros(len(group), int(seg_len.max()))
            for j, (i, start, _, _) in enumerate(group):
                real = min(int(seg_len[j]), int(lengths[i]) - start * f)
                chunk[j, :real] = wav[i, start * f : start * f + real]
            with self.cpu_bf16_autocast(chunk):
                seg_ids = self._encode_batch(chunk, seg_len.to(self.device), seg_frames.to(self.device)).cpu()
            for j, (i, start, _, keep) in enumerate(group):
                ids[i, :, written[i] : written[i] + keep] = seg_ids[j, :, :keep]
                written[i] += keep
        sources = [dict(s) for s in sources] if sources else [{} for _ in range(batch)]
        for s, n, t in zip(sources, lengths.tolist(), frames.tolist()):
            s.update(sample_rate=self.config.sample_rate, num_samples=int(n), num_frames=int(t))
        return self.make_tokens([ids], sources)

    def _encode_batch(self, wav: Tensor, lengths: Tensor, frames: Tensor) -> Tensor:
        """One masked forward: ids (B, Q, max(frames)), zero past each item's frames."""
        z, _ = self.encode_latents(wav, lengths)
        steps = int(frames.max())
        if z.shape[2] < steps:
            z = F.pad(z, (0, steps - z.shape[2]))
        _, ids, _ = self.quantizer(z[:, :, :steps], frames)
        return ids

    @torch.inference_mode()
    def decode(
        self, tokens: Tokens, *, context_seconds: float | None = None, one_piece: bool = False, batch_size: int = 8, seed: int | None = None
    ) -> Tensor:
        """Tokens -> waveform (B, max num_samples); each item's samples past its length are zero.

        The decoder is deterministic: `seed` (passed by `tok decode` to every model) is unused.

        Windows of `max_seconds` of codes (right context `context_seconds`, as in `encode`); windows
        of equal length are decoded together, so every item decodes as it would alone.
        """
        self.check_tokens(tokens)
        ids = tokens.streams[0].long()
        if ids.shape[1] != self.config.num_quantizers:
            raise TokError(f"expected {self.config.num_quantizers} codebooks, got {ids.shape[1]}")
        f = self.config.frame_samples
        frames = [int(s.get("num_frames", ids.shape[2])) for s in tokens.sources]
        samples = [int(s.get("num_samples", t * f)) for s, t in zip(tokens.sources, frames)]
        if any(t > ids.shape[2] or t < 1 for t in frames):
            raise TokError(f"token sources claim {frames} frames, but the ids hold {ids.shape[2]}")
        window, context = self._window_frames(context_seconds, one_piece)
        out = torch.zeros(len(frames), max(max(samples), max(frames) * f))
        segments = [(i, *w) for i, t in enumerate(frames) for w in self._windows(t, window, context)]
        by_length: dict[int, list] = {}
        for seg in segments:
            by_length.setdefault(seg[2] - seg[1], []).append(seg)
        for length, group_all in by_length.items():
            for first in range(0, len(group_all), batch_size):
                group = group_all[first : first + batch_size]
                chunk = torch.stack([ids[i, :, start:stop] for i, start, stop, _ in group]).to(self.device)
                seg_frames = torch.full((len(group),), length, device=self.device)
                with self.cpu_bf16_autocast(chunk):
                    audio = self.decode_latents(self.quantizer.decode_ids(chunk), seg_frames).float().cpu()
                for j, (i, start, _, keep) in enumerate(group):
                    out[i, start * f : (start + keep) * f] = audio[j, : keep * f]
        for i, n in enumerate(samples):
            out[i, n:] = 0.0
        return out[:, : max(samples)]


def build(config: XYTokenizerConfig) -> XYTokenizer:
    return XYTokenizer(config)

