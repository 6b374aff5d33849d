"""Weights of the networks behind metrics (Inception, LPIPS backbones, I3D, UTMOS).

Resolution order for a `MetricWeights` spec:

1. an explicit path (a missing file is an error, never a silent fallback);
2. `$TOK_METRIC_WEIGHTS/<filename>` when that variable names a folder;
3. torch hub's checkpoint cache `$TORCH_HOME/hub/checkpoints/<filename>` (where torchvision,
   torch-fidelity and `torch.hub.load_state_dict_from_url` keep their downloads);
4. the Hugging Face cache, for specs that live in a Hub repo;
5. a download into the torch hub cache (or the HF cache) when online.

Offline (HF_HUB_OFFLINE=1 or TOK_OFFLINE=1, or no network) and not found: a TokError naming
the file, where it was expected and where it comes from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import TokError
from ..core.weights import hf_cached, hub_offline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricWeights:
    """One weights file a metric needs.

    Args:
        name: human name, e.g. "torch-fidelity Inception-v3 (FID)".
        filename: the file's canonical name (the name it has in the caches).
        url: where it is downloaded from ("" when it only lives on the Hub).
        hf_repo / hf_filename: a Hugging Face repo holding it (optional).
    """

    name: str
    filename: str
    url: str = ""
    hf_repo: str = ""
    hf_filename: str = ""

    @property
    def origin(self) -> str:
        if self.url:
            return self.url
        return f"Hugging Face repo {self.hf_repo} ({self.hf_filename or self.filename})"


INCEPTION_FID = MetricWeights(
    "torch-fidelity Inception-v3 (FID/KID/IS)",
    "weights-inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
LPIPS_BACKBONES = {
    "alex": MetricWeights("torchvision AlexNet (LPIPS backbone)", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": MetricWeights("torchvision VGG16 (LPIPS backbone)", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": MetricWeights(
        "torchvision SqueezeNet 1.1 (LPIPS backbone)", "squeezenet1_1-b8a52dc0.pth", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"
    ),
}
I3D_FVD = MetricWeights(
    "I3D Kinetics-400 TorchScript (FVD, StyleGAN-V port)",
    "i3d_torchscript.pt",
    "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
)
UTMOS22_STRONG = MetricWeights(
    "UTMOS22 strong learner (SpeechMOS release)",
    "utmos22_strong_step7459_v1.pt",
    "https://github.com/tarepan/SpeechMOS/releases/download/v1.0.0/utmos22_strong_step7459_v1.pt",
)


def offline() -> bool:
    """True when downloads are off: HF_HUB_OFFLINE=1 or TOK_OFFLINE=1."""
    return hub_offline() or os.environ.get("TOK_OFFLINE", "") not in ("", "0")


def hub_cache_file(spec: MetricWeights) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.filename


def candidates(spec: MetricWeights) -> list[Path]:
    """The local places searched, in order (for error messages and `resolve`)."""
    places = []
    folder = os.environ.get("TOK_METRIC_WEIGHTS")
    if folder:
        places.append(Path(folder).expanduser() / spec.filename)
    places.append(hub_cache_file(spec))
    return places


def resolve(spec: MetricWeights, path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Find the weights file of `spec` (see the module docstring for the order)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise TokError(f"{path}: {spec.name} weights file does not exist (it comes from {spec.origin})")
        return path
    for place in candidates(spec):
        if place.is_file():
            return place
    if spec.hf_repo:
        cached = hf_cached(spec.hf_repo, spec.hf_filename or spec.filename)
        if cached is not None:
            return cached
    if download and not offline():
        return _download(spec)
    where = " or ".join(str(p) for p in candidates(spec))
    raise TokError(
        f"{spec.name} weights not found: expected {spec.filename} at {where} "
        f"(it comes from {spec.origin}; offline: copy it there or pass its path explicitly)"
    )


def _download(spec: MetricWeights) -> Path:
    if spec.hf_repo:
        from ..core.weights import hf_download

        return hf_download(spec.hf_repo, spec.hf_filename or spec.filename)
    target = hub_cache_file(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s from %s", spec.filename, spec.url)
    try:
        torch.hub.download_url_to_file(spec.url, str(target), progress=False)
    except Exception as e:  # noqa: BLE001 - network errors of every kind are user-facing here
        raise TokError(f"could not download {spec.filename} from {spec.url} ({type(e).__name__}: {e}); put the file at {target}") from None
    return target


class _Opaque:
    """Stands in for any class a checkpoint names outside torch's allowlist (e.g. the Hydra config
    in a Lightning checkpoint): it records nothing and runs no code of that class."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _LenientPickle:
    """A `pickle_module` for torch.load: torch's weights-only allowlist, everything else `_Opaque`."""

    import pickle as _pickle

    class Unpickler(_pickle.Unpickler):
        def find_class(self, module: str, name: str):
            from torch._weights_only_unpickler import _get_allowed_globals

            allowed = _get_allowed_globals()
            if f"{module}.{name}" in allowed:
                return allowed[f"{module}.{name}"]
            return _Opaque

    load = staticmethod(_pickle.load)
    __name__ = "tok_lenient_pickle"


def load_state_dict_safely(path: str | os.PathLike, what: str, state_dict_key: str | None = None) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True): a pickle with code in it is refused, with the file named.

    With `state_dict_key` (Lightning checkpoints: "state_dict"), a checkpoint whose other entries
    name foreign classes is still read: those classes are replaced by inert stand-ins and only
    the tensors under that key are kept."""
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
        obj = None
        if state_dict_key is not None:
            try:
                whole = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_LenientPickle)
                obj = whole[state_dict_key] if isinstance(whole, dict) and isinstance(whole.get(state_dict_key), dict) else None
                if obj is not None and not all(isinstance(v, torch.Tensor) for v in obj.values()):
                    obj = None
            except Exception:  # noqa: BLE001
                obj = None
        if obj is None:
            raise TokError(f"{path}: cannot read {what} weights safely ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(obj, dict):
        raise TokError(f"{path}: expected a state dict of {what} weights, found {type(obj).__name__}")
    return obj
