"""Inverse STFT with "same" padding and the Vocos ISTFT head (Siuzdak, arXiv 2306.00814).

`torch.istft` only supports centre padding with a window-envelope check that fails at the edges,
so the inverse transform is written out: irfft per frame, Hann window, overlap-add (`fold`),
trim (win - hop) / 2 samples at both ends, divide by the overlap-added squared window. T frames
give exactly T * hop samples, which is what makes codec frame counts line up with audio length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ISTFT(nn.Module):
    """Complex spectrogram (B, n_fft/2+1, T) -> waveform (B, T*hop) ("same") or torch.istft ("center").

    The Hann window is a buffer named `window` (it is stored in the official checkpoints).
    """

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None, padding: str = "same"):
        super().__init__()
        if padding not in ("same", "center"):
            raise ValueError(f"padding must be 'same' or 'center', got {padding!r}")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.win_length = win_length or n_fft
        self.padding = padding
        # hann_window returns a view into a longer storage (length + 1); a standalone copy lets
        # safetensors (Accelerate's save_state / load_state) store and reload the buffer.
        self.register_buffer("window", torch.hann_window(self.win_length).clone())

    def forward(self, spec: Tensor) -> Tensor:
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True)
        _, _, frames = spec.shape
        win, hop = self.win_length, self.hop_length
        pad = (win - hop) // 2
        frames_time = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        total = (frames - 1) * hop + win
        fold = {"output_size": (1, total), "kernel_size": (1, win), "stride": (1, hop)}
        audio = F.fold(frames_time, **fold)[:, 0, 0, pad : total - pad]
        envelope = F.fold(self.window.square()[None, :, None].expand(1, -1, frames), **fold)[0, 0, 0, pad : total - pad]
        # With "same" padding the trimmed envelope never gets near zero (NOLA holds inside).
        return audio / envelope


class ISTFTHead(nn.Module):
    """Linear -> (log-magnitude, phase) -> complex STFT -> waveform.

    Args:
        dim: input width.
        n_fft: FFT size (= window length); the linear layer `out` has n_fft + 2 outputs.
        hop_length: samples per input frame.
        padding: "same" (Vocos/WavTokenizer/XY-Tokenizer) or "center".
    Forward: x (B, T, dim) -> audio (B, T*hop). Computed in float32 (fp16 exp/irfft overflow).
    Magnitude = exp(log-magnitude) clipped at 100; the phase enters as cos + i sin.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same"):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length, n_fft, padding)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            h = F.linear(x.float(), self.out.weight.float(), self.out.bias.float()).transpose(1, 2)
            log_mag, phase = h.chunk(2, dim=1)
            mag = log_mag.exp().clamp(max=1e2)
            spec = torch.complex(mag * phase.cos(), mag * phase.sin())
            return self.istft(spec)
