"""Load OmniTokenizer weights: official Lightning `.ckpt` files and tok's own safetensors.

Official checkpoints hold `state_dict` (our attribute names are the official ones, so keys need
no conversion) and `hyper_parameters`, the argparse Namespace of the training run, read safely
with `torch.load(weights_only=True)` and only `argparse.Namespace` allowed. The released
hyper-parameters spell `casual_in_temporal_transformer` / `casual_in_peg` (the "casual" typo,
OmniTokenizer issues #13, #20); they are read under either spelling and checked against the
preset, so a checkpoint never loads into the wrong architecture. Discriminator and LPIPS
tensors (training only) are skipped by prefix; every other key must match exactly.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...core import TokError
from ...core.weights import WeightSource, file_digest, load_strict, read_state_dict
from .config import OmniTokenizerConfig
from .model import OmniTokenizer

TRAINING_ONLY_PREFIXES = ("image_discriminator.", "video_discriminator.", "perceptual_model.")

# hyper-parameter name in the checkpoint -> (config field, default when the run did not set it)
_HPARAMS: dict[str, tuple[str, Any]] = {
    "embedding_dim": ("dim", None),
    "heads": ("heads", None),
    "dim_head": ("dim_head", None),
    "patch_size": ("patch_size", None),
    "temporal_patch_size": ("temporal_patch_size", None),
    "enc_block": ("enc_block", None),
    "dec_block": ("dec_block", None),
    "temporal_depth": ("temporal_depth", None),
    "twod_window_size": ("window_size", 4),
    "spatial_pos": ("spatial_pos", "rel"),
    "n_codes": ("n_codes", None),
    "codebook_dim": ("codebook_dim", None),
    "use_vae": ("use_vae", False),
    "causal_in_temporal_transformer": ("causal_in_temporal_transformer", None),
    "causal_in_peg": ("causal_in_peg", None),
}


def _safe_globals() -> list:
    """Data-only types a Lightning checkpoint may pickle besides tensors: the argparse Namespace
    of the hyper-parameters, and numpy scalars (callback scores, loop counters)."""
    import numpy as np

    allowed = [argparse.Namespace, np.dtype]
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed the module
    allowed.append(core.multiarray.scalar)
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return allowed


_SAFE_GLOBALS = _safe_globals()


def read_lightning_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state_dict, hyper-parameters as a dict) of a Lightning `.ckpt`, loaded safely."""
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else "unpickling refused"
        raise TokError(f"{path}: refused to load: the checkpoint holds objects other than tensors ({reason})") from None
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise TokError(f"{path}: cannot read checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise TokError(f"{path}: not a Lightning checkpoint (no state_dict)")
    hparams = obj.get("hyper_parameters") or {}
    if isinstance(hparams, dict) and isinstance(hparams.get("args"), argparse.Namespace):
        hparams = hparams["args"]  # save_hyperparameters() on an `args` argument
    if isinstance(hparams, argparse.Namespace):
        hparams = vars(hparams)
    return obj["state_dict"], dict(hparams)


def check_hparams(hparams: dict[str, Any], config: OmniTokenizerConfig, path: Path) -> None:
    """Refuse a checkpoint whose training hyper-parameters describe another architecture."""
    if not hparams:
        return
    # The releases spell "casual"; the code (and later runs) "causal". Accept both.
    hparams = {key.replace("casual_", "causal_"): value for key, value in hparams.items()}
    for key, (field, default) in _HPARAMS.items():
        value = hparams.get(key, default)
        if value is None:
            continue
        expected = getattr(config, field)
        if value != expected:
            raise TokError(f"{path}: checkpoint was trained with {key}={value!r}, but this preset has {field}={expected!r}; use the matching model")


def _weights_file(tokenizer: OmniTokenizer, source: WeightSource) -> Path:
    path = source.path
    if not path.is_dir():
        return path
    if tokenizer.checkpoint_file and (path / tokenizer.checkpoint_file).is_file():
        return path / tokenizer.checkpoint_file
    candidates = sorted(p for p in path.iterdir() if p.suffix in (".ckpt", ".safetensors"))
    if len(candidates) != 1:
        raise TokError(f"{path}: expected {tokenizer.checkpoint_file or 'one .ckpt or .safetensors file'} in this folder")
    return candidates[0]


def load_weights(tokenizer: OmniTokenizer, source: WeightSource) -> None:
    """Load `source` into `tokenizer` strictly, mark its codebook as initialised and set the digest."""
    path = _weights_file(tokenizer, source)
    if not path.is_file():
        raise TokError(f"{path}: weights file does not exist")
    if path.suffix in (".ckpt", ".pt", ".pth"):
        state, hparams = read_lightning_checkpoint(path)
        check_hparams(hparams, tokenizer.cfg, path)
    else:
        state = read_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}
    own = tokenizer.state_dict()
    # Half-precision bundles load into a float32 model; integer buffers keep their type.
    state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    load_strict(tokenizer, state, path)
    tokenizer.codebook.need_init = False
    tokenizer.weights_digest = file_digest(path)
