"""Load TokenFlow weights: the official `.pt` training checkpoints or our safetensors files.

Official files are `torch.save` dicts; like the official loaders we take `ema`, else `model`,
else `state_dict`. They are read with `torch.load(weights_only=True)`; the only non-tensor
class such a checkpoint may hold is the training script's `argparse.Namespace` (`args`), which
is allowed explicitly. Loading is strict: missing, unexpected or mis-shaped keys name the file.
"""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict

OFFICIAL_FILES = {"clipb_224": "tokenflow_clipb_32k_enhanced.pt", "siglip_384": "tokenflow_siglip_32k.pt"}
VARIANT_NAMES = {"clipb_224": "TokenFlow-B (CLIP ViT-B/16, tokenflow-b)", "siglip_384": "TokenFlow-XL (SigLIP, tokenflow-xl)"}


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """The model state dict of an official `.pt` checkpoint (ema -> model -> state_dict) or a
    safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise TokError(f"{path}: weights file does not exist")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise TokError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise TokError(f"{path}: expected a checkpoint dict, found {type(obj).__name__}")
    for key in ("ema", "model", "state_dict"):
        if isinstance(obj.get(key), dict):
            return obj[key]
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return obj
    raise TokError(f"{path}: no 'ema', 'model' or 'state_dict' entry (found {', '.join(map(str, list(obj)[:6]))})")


def checkpoint_variant(state_dict: dict[str, Tensor]) -> str | None:
    """Which official semantic tower a state dict was made for (None when it is neither)."""
    if any(k.startswith("encoder_vqkd.vision_model.") for k in state_dict):
        return "siglip_384"
    if "encoder_vqkd.conv1.weight" in state_dict and "encoder_vqkd.positional_embedding" in state_dict:
        return "clipb_224"
    return None


def weights_file(source: WeightSource, teacher: str) -> Path:
    """The weights file inside a source: the file itself, or the official file in a folder."""
    path = source.path
    if path.is_dir():
        for name in (OFFICIAL_FILES.get(teacher, ""), "model.safetensors"):
            if name and (path / name).is_file():
                return path / name
        raise TokError(f"{path}: no {OFFICIAL_FILES.get(teacher, 'model.safetensors')} in this folder")
    return path


def load_weights(tokenizer, source: WeightSource) -> None:
    """Fill a `TokenFlow` with the weights in `source`, strictly; refuse the other variant."""
    teacher = tokenizer.config.teacher
    path = weights_file(source, teacher)
    state_dict = read_checkpoint(path)
    found = checkpoint_variant(state_dict)
    if teacher in OFFICIAL_FILES and found is not None and found != teacher:
        raise TokError(
            f"{path}: this is a {VARIANT_NAMES[found]} checkpoint; {tokenizer.name!r} needs a {VARIANT_NAMES[teacher]} one"
        )
    load_strict(tokenizer, state_dict, path)
    tokenizer.weights_digest = file_digest(path)
