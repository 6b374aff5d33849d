"""Fill a WavTokenizer with weights: official Lightning `.ckpt` files or checkpoints written by tok.

Official files (PyTorch Lightning 1.8) keep the model under `state_dict`; as the official loader
does, only keys under `feature_extractor.`, `backbone.` and `head.` are kept (discriminators,
mel-loss buffers and optimiser states are dropped). Two further, purely mechanical conversions:

* The EnCodec EMA codebook buffers `...quantizer.vq.layers.0._codebook.{embed, embed_avg,
  cluster_size, inited}` ([K, D], [K, D], [K], [1] float) become the buffers of our quantizer
  `...quantizer.vq._codebook.{embed, embed_avg, cluster_size, initted}` ([1, K, D], [1, K, D],
  [1, K], bool scalar). Loading `inited` as `initted` is what keeps k-means from re-running
  (and overwriting the loaded codebook) on a first training-mode forward.
* The SEANet *decoder* (`feature_extractor.encodec.decoder.*`) is never used at inference and
  is not built; its keys are dropped.

Everything else must match key-for-key and shape-for-shape (`load_strict`).
Loading is safe: `torch.load(weights_only=True)` or safetensors.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict, read_state_dict
from .model import WavTokenizer

KEEP_PREFIXES = ("feature_extractor.", "backbone.", "head.")
UNUSED_DECODER = "feature_extractor.encodec.decoder."
OFFICIAL_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
OUR_CODEBOOK = "feature_extractor.encodec.quantizer.vq._codebook."


def is_official(state: dict[str, Tensor]) -> bool:
    return any(k.startswith(OFFICIAL_CODEBOOK) for k in state)


def from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official WavTokenizer state dict (Lightning `state_dict`) -> our key layout."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not key.startswith(KEEP_PREFIXES) or key.startswith(UNUSED_DECODER):
            continue
        if key.startswith(OFFICIAL_CODEBOOK):
            name = key[len(OFFICIAL_CODEBOOK) :]
            if name == "inited":
                out[OUR_CODEBOOK + "initted"] = torch.tensor(bool(value.reshape(-1)[0].item()))
            elif name in ("embed", "embed_avg", "cluster_size"):
                out[OUR_CODEBOOK + name] = value.float()[None]
            else:
                out[key] = value  # unknown buffer: load_strict names it
            continue
        out[key] = value
    return out


def to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict -> the official key layout (inverse of `from_official`, without the decoder)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(OUR_CODEBOOK):
            name = key[len(OUR_CODEBOOK) :]
            if name == "initted":
                out[OFFICIAL_CODEBOOK + "inited"] = value.reshape(1).float()
            else:
                out[OFFICIAL_CODEBOOK + name] = value[0]
        else:
            out[key] = value
    return out


def _read(path: Path) -> dict[str, Tensor]:
    try:
        return read_state_dict(path)
    except pickle.UnpicklingError as e:
        raise TokError(
            f"{path}: checkpoint holds objects that safe loading refuses ({str(e).splitlines()[0]}); "
            "re-save its 'state_dict' with torch.save in a trusted environment and pass that file"
        ) from None


def checkpoint_config(path: Path) -> dict | None:
    """The config stored in a tok-written safetensors checkpoint (None for other files)."""
    if path.suffix != ".safetensors":
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["tok_config"]) if "tok_config" in meta else None


def load_weights(model: WavTokenizer, source: WeightSource) -> None:
    """Load `source` (a .ckpt/.pt/.safetensors file, or a folder holding one) into `model` strictly."""
    path = source.path
    if path.is_dir():
        found = sorted([*path.glob("*.ckpt"), *path.glob("*.safetensors")])
        if len(found) != 1:
            raise TokError(f"{path}: expected one .ckpt or .safetensors file in the folder, found {len(found)}")
        path = found[0]
    state = _read(path)
    config = checkpoint_config(path)
    if config is not None and config != model.config.to_dict():
        diff = sorted(k for k in config if config.get(k) != model.config.to_dict().get(k))
        raise TokError(f"{path}: checkpoint was trained with another WavTokenizer config (differs in {', '.join(diff)})")
    if is_official(state):
        state = from_official(state)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    load_strict(model, state, path)
    model.weights_digest = file_digest(path)
