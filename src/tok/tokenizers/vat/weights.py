"""Fill a VAT with weights written by tok's trainer (no official VAT weights exist).

Checkpoints are safetensors files of the whole model with the config in the metadata
(`tok_config`); a checkpoint made for another configuration is refused with both configs named.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict, read_state_dict, save_tok_checkpoint
from .config import VATConfig
from .model import VAT


def load_weights(model: VAT, source: WeightSource) -> None:
    """Load `source` (a .safetensors file or a folder holding model.safetensors) strictly."""
    path = source.path / "model.safetensors" if source.path.is_dir() else source.path
    if not path.is_file():
        raise TokError(f"{source.path}: folder has no model.safetensors")
    state = {k: v.float() if v.is_floating_point() else v for k, v in read_state_dict(path).items()}
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            saved = (f.metadata() or {}).get("tok_config")
        if saved is not None and VATConfig.from_dict(json.loads(saved)) != model.config:
            raise TokError(f"{path}: weights were trained for another VAT configuration than {model.name!r}")
    load_strict(model, state, path)
    model.weights_digest = file_digest(path)


def save_checkpoint(model: VAT, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the model as safetensors (floating tensors in `dtype`) with its config in the metadata."""
    return save_tok_checkpoint(model, path, "vat", model.config.to_dict(), dtype)
