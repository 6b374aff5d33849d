"""Fill a HieraTok with weights written by tok's trainer (no official weights exist).

Checkpoints are safetensors files of the model's state dict with the config as JSON in the
metadata (`tok_config`); a checkpoint made for another config is refused by name.
"""

from __future__ import annotations

import json

from safetensors import safe_open

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict, read_state_dict
from .config import HieraTokConfig
from .model import HieraTok


def load_weights(model: HieraTok, source: WeightSource) -> None:
    """Load `source` (a .safetensors file, or a folder with model.safetensors) strictly."""
    path = source.path / "model.safetensors" if source.path.is_dir() else source.path
    state = read_state_dict(path)
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if "tok_config" in metadata:
            saved = HieraTokConfig.from_dict(json.loads(metadata["tok_config"]))
            if saved != model.config:
                diff = [k for k, v in saved.to_dict().items() if model.config.to_dict()[k] != v]
                raise TokError(f"{path}: checkpoint was made for another HieraTok config (differs in {', '.join(diff)})")
    load_strict(model, {k: v.float() for k, v in state.items()}, path)
    model.weights_digest = file_digest(path)
