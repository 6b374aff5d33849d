"""UTMOS22 strong learner (Saeki et al., arXiv 2204.02152), the released inference variant
without the phoneme encoder: wav2vec 2.0 Base -> [features, domain, judge] -> BLSTM -> MLP ->
frame scores -> mean -> ×2 + 3.

Native parameter names follow the SpeechMOS release (`wav2vec2.*`, `domain_emb` (1, 128),
`judge_emb` (1, 128), `blstm.*`, `projection.{0,2}.*`); `convert_lightning_state_dict` maps the
official UTMOS-demo Lightning checkpoint (`epoch=3-step=7459.ckpt`) onto them by picking the
embedding rows used at inference (domain 0, judge 288).

Unlike the original, batches may mix lengths: `forward(wave, lengths)` masks padding in
wav2vec 2.0, packs the BLSTM input and averages only real frames, so a padded item scores as it
does alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ...core.errors import TokError
from ...core.weights import load_strict
from ..weights import load_state_dict_safely
from .wav2vec2 import Wav2Vec2, Wav2Vec2Config, frame_mask

SAMPLE_RATE = 16000
DOMAIN_ID = 0  # main track
JUDGE_ID = 288  # the listener id the demo, WavTokenizer and SpeechBrain use at inference
LIGHTNING_SSL_PREFIX = "feature_extractors.0.ssl_model."
BASE = Wav2Vec2Config()  # wav2vec 2.0 Base, as released


class UTMOS22Strong(nn.Module):
    def __init__(self, ssl: Wav2Vec2Config = BASE, emb_dim: int = 128, rnn_dim: int = 512, proj_dim: int = 2048):
        super().__init__()
        self.wav2vec2 = Wav2Vec2(ssl)
        self.domain_emb = nn.Parameter(torch.zeros(1, emb_dim), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.zeros(1, emb_dim), requires_grad=False)
        self.blstm = nn.LSTM(ssl.dim + 2 * emb_dim, rnn_dim, batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * rnn_dim, proj_dim), nn.ReLU(), nn.Linear(proj_dim, 1))

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> Tensor:
        """wave (B, L) at 16 kHz in [-1, 1], lengths (B,) real samples per row -> MOS (B,)."""
        feats, frames = self.wav2vec2(wave, lengths)  # (B, T, 768)
        batch, total, _ = feats.shape
        if int(frames.min()) < 1:
            raise TokError("audio too short for UTMOS: under 400 samples (25 ms at 16 kHz)")
        cond = torch.cat([self.domain_emb, self.judge_emb], dim=1)[:, None].expand(batch, total, -1)
        x = torch.cat([feats, cond], dim=2)
        packed = nn.utils.rnn.pack_padded_sequence(x, frames.cpu(), batch_first=True, enforce_sorted=False)
        x, _ = nn.utils.rnn.pad_packed_sequence(self.blstm(packed)[0], batch_first=True, total_length=total)
        scores = self.projection(x)[..., 0]  # (B, T)
        keep = frame_mask(frames, total).to(scores.dtype)
        return (scores * keep).sum(1) / frames.to(scores.dtype) * 2 + 3


def convert_lightning_state_dict(state: dict[str, Tensor], source: str = "checkpoint") -> dict[str, Tensor]:
    """UTMOS-demo Lightning `state_dict` -> the native (SpeechMOS) layout; unknown keys are an error."""
    out: dict[str, Tensor] = {}
    rename = {
        "output_layers.0.decoder_rnn.": "blstm.",
        "output_layers.1.net.0.": "projection.0.",
        "output_layers.1.net.3.": "projection.2.",
    }
    unexpected = []
    for key, value in state.items():
        if key.startswith(LIGHTNING_SSL_PREFIX):
            out["wav2vec2." + key[len(LIGHTNING_SSL_PREFIX) :]] = value
        elif key == "feature_extractors.1.embedding.weight":
            out["domain_emb"] = value[DOMAIN_ID : DOMAIN_ID + 1]
        elif key == "output_layers.0.judge_embedding.weight":
            out["judge_emb"] = value[JUDGE_ID : JUDGE_ID + 1]
        else:
            prefix = next((p for p in rename if key.startswith(p)), None)
            if prefix is None:
                unexpected.append(key)
            else:
                out[rename[prefix] + key[len(prefix) :]] = value
    if unexpected:
        raise TokError(f"{source}: unexpected keys for a UTMOS22 strong checkpoint: {', '.join(sorted(unexpected)[:5])}")
    return out


def load_utmos(path: str | os.PathLike, config: Wav2Vec2Config = BASE) -> UTMOS22Strong:
    """Build UTMOS22Strong and load a SpeechMOS state dict or a UTMOS-demo Lightning checkpoint, strictly."""
    path = Path(path)
    state = load_state_dict_safely(path, "UTMOS22", state_dict_key="state_dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if any(k.startswith(LIGHTNING_SSL_PREFIX) for k in state):
        state = convert_lightning_state_dict(state, str(path))
    model = UTMOS22Strong(config)
    load_strict(model, state, path)
    return model.eval().requires_grad_(False)
