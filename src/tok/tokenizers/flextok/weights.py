"""Fill a FlexTok with weights: official releases or checkpoints written by tok's trainer.

Official `model.safetensors` files use the module names of apple/ml-flextok, which our
attribute names copy, so no key conversion is needed. Their VAE latent scaling lives in the
VAE repo's diffusers `config.json` (`scaling_factor`, `shift_factor`); tok checkpoints carry
their whole config in the safetensors metadata (`tok_config`).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict, read_state_dict
from .model import FlexTok

VAE_PREFIX = "vae.vae."


def _metadata(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


def _vae_folder(source: WeightSource, root: Path) -> Path | None:
    for folder in (source.extra("vae"), root / "vae", root):
        if folder is not None and (folder / "config.json").is_file():
            return folder
    return None


def load_weights(model: FlexTok, source: WeightSource) -> None:
    """Load `source` into `model` strictly and set `model.weights_digest`.

    `source.path` is a `.safetensors` file or a folder holding `model.safetensors` (the official
    Hub layout), optionally with the VAE's diffusers folder (`config.json`, and
    `diffusion_pytorch_model.safetensors` when the main file lacks the `vae.vae.*` keys) in
    `vae/` or given as the source's `vae` extra.
    """
    path = source.path
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        path = path / "model.safetensors"
        if not path.is_file():
            raise TokError(f"{source.path}: folder has no model.safetensors")
    state = {k: v.float() for k, v in read_state_dict(path).items()}
    metadata = _metadata(path)
    if "tok_config" in metadata:
        vae_config = json.loads(metadata["tok_config"])["vae"]
        model.set_latent_scaling(vae_config["scaling_factor"], vae_config["shift_factor"])
    else:
        folder = _vae_folder(source, root)
        if folder is None:
            raise TokError(f"{source.path}: official FlexTok weights need the VAE's config.json (in a vae/ folder beside them)")
        vae_config = json.loads((folder / "config.json").read_text())
        model.set_latent_scaling(vae_config.get("scaling_factor", 1.0), vae_config.get("shift_factor"))
        if not any(k.startswith(VAE_PREFIX) for k in state):
            vae_file = folder / "diffusion_pytorch_model.safetensors"
            if not vae_file.is_file():
                raise TokError(f"{path}: has no VAE weights and {vae_file} does not exist")
            state.update({VAE_PREFIX + k: v.float() for k, v in read_state_dict(vae_file).items()})
    load_strict(model, state, path)
    model.weights_digest = file_digest(path)
