"""GAN discriminators for audio codecs, shared by WavTokenizer and XY-Tokenizer training.

* `MultiPeriodDiscriminator` — HiFi-GAN (Kong et al., arXiv 2010.05646): the waveform folded
  into (L/p, p) for periods p, 2-D convs along time.
* `MultiResolutionDiscriminator` — UnivNet (Jang et al., arXiv 2106.07889): 2-D convs on STFT
  magnitudes at several resolutions.
* `MultiBandComplexDiscriminator` — DAC (Kumar et al., arXiv 2306.06546): 2-D convs on the
  complex STFT (real and imaginary as two channels) split into frequency bands.

Every discriminator takes a waveform (B, L) and returns one `(logits, feature_maps)` pair per
sub-discriminator; `audio_losses` turns real/fake pairs into GAN and feature-matching losses.
Widths are arguments: the defaults are the official ones, small CPU models shrink them.
The optional condition (`num_embeddings`) is WavTokenizer's bandwidth-id projection term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.weight_norm import WNConv2d

DiscOutput = list[tuple[Tensor, list[Tensor]]]
DAC_BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


def _conditioned(x: Tensor, logits: Tensor, emb: nn.Embedding | None, cond_id: Tensor | None) -> Tensor:
    """Add the projection-discriminator term <emb(id), features> when conditional."""
    if emb is None or cond_id is None:
        return logits
    return logits + (emb(cond_id)[:, :, None, None] * x).sum(dim=1, keepdim=True)


class PeriodDiscriminator(nn.Module):
    """One HiFi-GAN period discriminator: (B, L) -> logits (B, N), feature maps."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 128, 512, 1024, 1024), kernel_size: int = 5,
                 stride: int = 3, num_embeddings: int | None = None):
        super().__init__()
        self.period = period
        widths = (1, *channels)
        pad = (kernel_size // 2, 0)
        self.convs = nn.ModuleList(
            WNConv2d(widths[i], widths[i + 1], (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1), padding=pad)
            for i in range(len(channels))
        )
        self.conv_post = WNConv2d(channels[-1], 1, (3, 1), padding=(1, 0))
        self.emb = nn.Embedding(num_embeddings, channels[-1]) if num_embeddings else None
        if self.emb is not None:
            nn.init.zeros_(self.emb.weight)

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        x = audio[:, None]
        if x.shape[-1] % self.period:
            x = F.pad(x, (0, self.period - x.shape[-1] % self.period), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)
        fmaps = []
        for i, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), 0.1)
            if i > 0:  # the official code skips the first map in feature matching
                fmaps.append(x)
        logits = self.conv_post(x)
        fmaps.append(logits)
        return _conditioned(x, logits, self.emb, cond_id).flatten(1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: tuple[int, ...] = (32, 128, 512, 1024, 1024),
                 num_embeddings: int | None = None):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels, num_embeddings=num_embeddings) for p in periods)

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> DiscOutput:
        return [d(audio, cond_id) for d in self.discriminators]


class ResolutionDiscriminator(nn.Module):
    """One UnivNet magnitude-STFT discriminator at (n_fft, hop, win), rectangular window as the official code."""

    def __init__(self, resolution: tuple[int, int, int], channels: int = 64, num_embeddings: int | None = None):
        super().__init__()
        self.resolution = tuple(resolution)
        c = channels
        self.convs = nn.ModuleList([
            WNConv2d(1, c, (7, 5), (2, 2), padding=(3, 2)),
            WNConv2d(c, c, (5, 3), (2, 1), padding=(2, 1)),
            WNConv2d(c, c, (5, 3), (2, 2), padding=(2, 1)),
            WNConv2d(c, c, 3, (2, 1), padding=1),
            WNConv2d(c, c, 3, (2, 2), padding=1),
        ])
        self.conv_post = WNConv2d(c, 1, (3, 3), padding=(1, 1))
        self.emb = nn.Embedding(num_embeddings, c) if num_embeddings else None
        if self.emb is not None:
            nn.init.zeros_(self.emb.weight)

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        n_fft, hop, win = self.resolution
        window = torch.ones(win, device=audio.device, dtype=audio.dtype)
        x = torch.stft(audio.float(), n_fft, hop, win, window=window.float(), center=True, return_complex=True).abs()[:, None]
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            fmaps.append(x)
        logits = self.conv_post(x)
        fmaps.append(logits)
        return _conditioned(x, logits, self.emb, cond_id).flatten(1), fmaps


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, resolutions: tuple[tuple[int, int, int], ...] = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)),
                 channels: int = 64, num_embeddings: int | None = None):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(r, channels, num_embeddings) for r in resolutions)

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> DiscOutput:
        return [d(audio, cond_id) for d in self.discriminators]


class ComplexBandDiscriminator(nn.Module):
    """One DAC complex multi-band STFT discriminator (Hann window, hop = window / 4)."""

    def __init__(self, window_length: int, bands: tuple[tuple[float, float], ...] = DAC_BANDS, channels: int = 32):
        super().__init__()
        self.window_length = window_length
        bins = window_length // 2 + 1
        self.bands = [(int(lo * bins), int(hi * bins)) for lo, hi in bands]
        c = channels

        def stack() -> nn.ModuleList:
            return nn.ModuleList([
                WNConv2d(2, c, (3, 9), (1, 1), padding=(1, 4)),
                WNConv2d(c, c, (3, 9), (1, 2), padding=(1, 4)),
                WNConv2d(c, c, (3, 9), (1, 2), padding=(1, 4)),
                WNConv2d(c, c, (3, 9), (1, 2), padding=(1, 4)),
                WNConv2d(c, c, (3, 3), (1, 1), padding=(1, 1)),
            ])

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = WNConv2d(c, 1, (3, 3), (1, 1), padding=(1, 1))

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        n = self.window_length
        window = torch.hann_window(n, device=audio.device)
        spec = torch.stft(audio.float(), n, n // 4, window=window, center=True, return_complex=True)
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # (B, 2, T, F)
        fmaps, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            band = x[..., lo:hi]
            for conv in convs:
                band = F.leaky_relu(conv(band), 0.1)
                fmaps.append(band)
            outs.append(band)
        logits = self.conv_post(torch.cat(outs, dim=-1))
        fmaps.append(logits)
        return logits.flatten(1), fmaps


class MultiBandComplexDiscriminator(nn.Module):
    """DAC's multi-resolution complex discriminator; inputs are DC-removed and peak-normalised to 0.8 first."""

    def __init__(self, window_lengths: tuple[int, ...] = (2048, 1024, 512), bands: tuple[tuple[float, float], ...] = DAC_BANDS,
                 channels: int = 32):
        super().__init__()
        self.discriminators = nn.ModuleList(ComplexBandDiscriminator(w, bands, channels) for w in window_lengths)

    def forward(self, audio: Tensor, cond_id: Tensor | None = None) -> DiscOutput:
        audio = audio - audio.mean(dim=-1, keepdim=True)
        audio = 0.8 * audio / (audio.abs().amax(dim=-1, keepdim=True) + 1e-9)
        return [d(audio) for d in self.discriminators]
