"""Find and load weights: explicit path -> Hugging Face cache -> Hub (online) -> bundled.

Loading is safe (safetensors, or `torch.load(weights_only=True)` for official `.ckpt`/`.pt`),
strict (missing or unexpected keys raise a `TokError` naming them) and cached per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from .errors import TokError
from .zoo import ModelCard

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "zoo_weights"


@dataclass(frozen=True)
class WeightSource:
    """Where weights were found: `kind` is explicit | hf-cache | hub | bundled."""

    kind: str
    path: Path
    extras: tuple[tuple[str, Path], ...] = ()

    def extra(self, key: str) -> Path | None:
        return dict(self.extras).get(key)


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 2.0) -> bool:
    """A quick TCP probe, so an offline machine fails in seconds instead of retrying for minutes."""
    if hub_offline():
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def hf_cached(repo: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def hf_download(repo: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as e:  # network, auth, missing file: all are user-facing here
        raise TokError(f"could not download {filename} from {repo} on the Hugging Face Hub ({type(e).__name__}: {e})") from None


def _hf_snapshot_dir(repo: str, files: tuple[str, ...], download: bool) -> Path | None:
    """The local snapshot folder holding all `files` of `repo`, downloading them if allowed."""
    fetch = hf_download if download else hf_cached
    paths = [fetch(repo, f) for f in files]
    if not all(paths):
        return None
    return Path(str(paths[0])[: -len(files[0])])


def weights_available(card: ModelCard) -> bool:
    """True when the card's weights are on this machine (HF cache or bundled), without network."""
    if card.hf_repo and card.hf_files and all(hf_cached(card.hf_repo, f) for f in card.hf_files):
        return all(hf_cached(r, "config.json") for r in card.extra_repos.values())
    return bool(card.bundled) and (BUNDLED_DIR / card.bundled).is_file()


def resolve_weights(card: ModelCard, weights: str | os.PathLike | None = None) -> WeightSource:
    """Find the weights of `card`, trying the sources in the documented order."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise TokError(f"{path}: weights file or folder does not exist")
        return WeightSource("explicit", path)
    for download in (False, True):
        if not card.hf_repo or (download and not hub_reachable()):
            continue
        main = _hf_snapshot_dir(card.hf_repo, card.hf_files, download)
        if main is None:
            continue
        extras = []
        for key, repo in card.extra_repos.items():
            # Only the config of an extra repo is required (e.g. a VAE whose weights are
            # already inside the main checkpoint); its weights are used when cached.
            folder = _hf_snapshot_dir(repo, ("config.json",), download)
            if folder is None:
                break
            extras.append((key, folder))
        else:
            return WeightSource("hub" if download else "hf-cache", main, tuple(extras))
    if card.bundled and (BUNDLED_DIR / card.bundled).is_file():
        return WeightSource("bundled", BUNDLED_DIR / card.bundled)
    where = f"Hugging Face repo {card.hf_repo}" if card.hf_repo else "a bundled checkpoint"
    hint = " (offline: set HF_HUB_OFFLINE=0 and connect, or pass --weights PATH)" if card.hf_repo else ""
    raise TokError(f"no weights found for {card.name!r}: expected {where}{hint}")


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> dict[str, Tensor]:
    suffix = Path(path).suffix
    try:
        if suffix == ".safetensors":
            return load_file(path)
        if suffix in (".ckpt", ".pt", ".pth", ".bin"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
                obj = obj["state_dict"]
            if not isinstance(obj, dict):
                raise TokError(f"{path}: expected a state dict, found {type(obj).__name__}")
            return obj
    except pickle.UnpicklingError as e:
        # torch.load(weights_only=True) refuses pickled objects other than tensors and containers.
        raise TokError(
            f"{path}: cannot read weights (UnpicklingError: the checkpoint holds objects that safe loading "
            f"refuses: {str(e).splitlines()[0]}); "
            "re-save its 'state_dict' with torch.save in a trusted environment and pass that file"
        ) from None
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as e:
        raise TokError(f"{path}: cannot read weights ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    raise TokError(f"{path}: unsupported weights format {suffix!r} (use .safetensors, .ckpt or .pt)")


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a state dict safely; repeated reads of an unchanged file come from a per-process cache."""
    path = Path(path)
    if not path.is_file():
        raise TokError(f"{path}: weights file does not exist")
    st = path.stat()
    return dict(_read_cached(str(path.resolve()), st.st_mtime_ns, st.st_size))


def load_strict(module: nn.Module, state_dict: dict[str, Tensor], source: str | os.PathLike) -> None:
    """Copy `state_dict` into `module`; any missing, unexpected or mis-shaped key is a TokError."""
    check_keys(module.state_dict(), state_dict, source)
    module.load_state_dict(state_dict, strict=True)


def check_keys(own: dict[str, Tensor], state_dict: dict[str, Tensor], source: str | os.PathLike) -> None:
    """Raise a TokError naming the keys of `state_dict` that are missing from, unexpected in or
    shaped differently from `own` (a model's state dict, possibly under a checkpoint's key names)."""
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [k for k in own.keys() & state_dict.keys() if own[k].shape != state_dict[k].shape]

    def show(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({show(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({show(unexpected)})")
    if mismatched:
        k = sorted(mismatched)[0]
        problems.append(
            f"{len(mismatched)} keys with other shapes ({k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        )
    if problems:
        raise TokError(f"{source}: weights do not fit the model: " + "; ".join(problems))


def file_digest(path: str | os.PathLike) -> str:
    """A short digest of a weights file (size, first and last MiB), written into .tok headers so
    tokens are only decoded by the weights that made them. Cheap even for multi-GB checkpoints."""
    path = Path(path)
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def save_tok_checkpoint(
    model: nn.Module, path: str | os.PathLike, family: str, config: dict, dtype: torch.dtype = torch.float16
) -> Path:
    """Write a checkpoint made by this project: the state dict as safetensors (floating tensors in
    `dtype`, half precision by default), with `tok_family` and the JSON `tok_config` in the
    metadata so loaders can rebuild or check the architecture. Written atomically."""
    from safetensors.torch import save_file

    from .io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"tok_family": family, "tok_config": json.dumps(config)})
    return path
