"""Load and save XY-Tokenizer weights in the official key layout.

The official `xy_tokenizer.ckpt` (fdugyt/XY_Tokenizer) is a `torch.load` pickle holding either the
generator's state dict or `{"generator": state_dict, ...}`; it is read with
`weights_only=True`. Its keys match our attribute names except the RVQ buffers, which are mapped
onto vector-quantize-pytorch's (`quantizer.library_to_official`), initialised flag included, so
loading never re-runs k-means. tok's own checkpoints (bundled `.safetensors`) use the same
official layout, so one loader serves both, strictly.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from ...core.errors import TokError
from ...core.io import atomic_path
from ...core.weights import (
    WeightSource,
    check_keys,
    file_digest,
    load_strict,
    read_state_dict,
)
from .model import XYTokenizer
from .quantizer import library_to_official, official_to_library

CHECKPOINT_FILE = "xy_tokenizer.ckpt"


def official_state_dict(model: XYTokenizer) -> dict[str, Tensor]:
    """The model's state dict under the official key names and shapes."""
    return library_to_official(model.state_dict())


def load_state(model: XYTokenizer, state: dict[str, Tensor], source: str | os.PathLike) -> None:
    """Load an official-layout state dict strictly (missing or unexpected keys are named)."""
    if "generator" in state and isinstance(state["generator"], dict):
        state = state["generator"]
    # Checked under the official names first, so errors name the keys as the checkpoint has them.
    check_keys(official_state_dict(model), state, source)
    own = model.state_dict()
    converted = {}
    for key, value in official_to_library(state).items():
        if not isinstance(value, Tensor):
            raise TokError(f"{source}: entry {key!r} is not a tensor")
        # Buffers keep their own dtype (the bool k-means flag); everything else loads as float32.
        target = own.get(key)
        converted[key] = value.to(target.dtype) if target is not None else value
    load_strict(model, converted, source)


def load_weights(model: XYTokenizer, source: WeightSource) -> None:
    """Fill `model` from `source` (a `.ckpt` / `.safetensors` file, or a folder with xy_tokenizer.ckpt)."""
    path = source.path
    if path.is_dir():
        candidates = [path / CHECKPOINT_FILE, path / "model.safetensors"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise TokError(f"{source.path}: folder has neither {CHECKPOINT_FILE} nor model.safetensors")
    try:
        state = read_state_dict(path)
    except pickle.UnpicklingError as e:
        raise TokError(f"{path}: checkpoint holds objects that safe loading refuses ({str(e).splitlines()[0]})") from None
    load_state(model, state, path)
    model.weights_digest = file_digest(path)


def save_checkpoint(model: XYTokenizer, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the model in the official layout as safetensors (floats in `dtype`, buffers' flags kept)."""
    path = Path(path)
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in official_state_dict(model).items()
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"tok_family": "xy-tokenizer"})
    return path
