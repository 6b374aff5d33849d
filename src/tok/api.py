"""The Python API: load models by name, encode media files to .tok files and back."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor

from .core import TokError, Tokenizer, Tokens
from .core import zoo
from .core.media import DEFAULT_SUFFIXES, IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, list_media
from .core.media.read_ahead import read_ahead
from .core.tokens import read_header
from .core.weights import resolve_weights, weights_available

logger = logging.getLogger(__name__)

# Families register their ModelCards on import.
FAMILIES = (
    "tok.tokenizers.flextok",
    "tok.codecs.wavtokenizer",
    "tok.codecs.xy_tokenizer",
    "tok.tokenizers.tokenflow",
    "tok.tokenizers.hieratok",
    "tok.tokenizers.omnitokenizer",
    "tok.tokenizers.vat",
)


def _register_families() -> None:
    for module in FAMILIES:
        importlib.import_module(module)


def list_models() -> list[zoo.ModelCard]:
    """Every registered model card (aliases resolve through `load`)."""
    _register_families()
    return zoo.cards()


def load(name: str, weights: str | os.PathLike | None = None, device: str | torch.device | None = None) -> Tokenizer:
    """Build the model `name` and load its weights, in eval mode.

    Weights come from `weights` (a file or folder) if given, else the Hugging Face cache, else
    the Hub when online, else the bundled checkpoint. A family alias such as "flextok" resolves
    to the best variant whose weights are on this machine; `tokenizer.name` says which.
    """
    _register_families()
    resolved = zoo.resolve_name(name, lambda card: weights is not None or weights_available(card))
    card = zoo.get_card(resolved)
    source = resolve_weights(card, weights)
    tokenizer = card.builder(card)
    card.load_weights(tokenizer, source)
    tokenizer.name = card.name
    logger.info("loaded %s from %s (%s)", card.name, source.path, source.kind)
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return tokenizer.eval().requires_grad_(False).to(device)


def media_files(inputs: list[str | os.PathLike], modality: str) -> list[Path]:
    """Expand inputs (files and folders) to the media files to encode; folders give their supported files."""
    if modality not in MEDIA_EXTENSIONS:
        raise TokError(f"reading {modality} files is not supported yet")
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(list_media(item, modality))
        elif not item.exists():
            raise TokError(f"{item}: no such file or folder")
        else:
            files.append(item)
    return files


def default_output(path: Path, suffix: str, out_dir: str | os.PathLike | None) -> Path:
    target = path.with_suffix(suffix)
    return Path(out_dir) / target.name if out_dir is not None else target


def check_options(method: Any, opts: dict[str, Any], model_name: str) -> None:
    """Refuse family-specific options (e.g. `scales`, `steps`) that `method` does not take."""
    accepted = inspect.signature(method).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        return
    unknown = [k for k, v in opts.items() if v is not None and k not in accepted]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise TokError(f"model {model_name!r} does not take {flags}")


def encode_files(
    tokenizer: Tokenizer,
    paths: list[Path],
    outputs: list[Path],
    *,
    num_tokens: int | None = None,
    batch_size: int = 8,
    **opts: Any,
) -> Iterator[tuple[Path, Path]]:
    """Encode `paths` in batches, writing one .tok per input atomically; yields (input, output).

    `opts` are family-specific encode options (e.g. HieraTok's `scales`); None values are dropped.
    """
    if len(paths) != len(outputs):
        raise ValueError("one output per input")
    tokenizer.check_num_tokens(num_tokens)
    opts = {k: v for k, v in opts.items() if v is not None}
    check_options(tokenizer.encode, opts, tokenizer.name)
    if num_tokens is not None:
        opts["num_tokens"] = num_tokens
    starts = range(0, len(paths), batch_size)
    chunks = [paths[start : start + batch_size] for start in starts]
    for start, chunk, read in zip(starts, chunks, read_ahead(tokenizer.read_media, chunks)):
        items, sources = zip(*read)
        tokens = tokenizer.encode_items(list(items), list(sources), **opts)
        for i, (path, output) in enumerate(zip(chunk, outputs[start : start + batch_size])):
            tokens[i].save(output)
            yield path, output


def encode_file(
    path: str | os.PathLike,
    model: str | Tokenizer,
    output: str | os.PathLike | None = None,
    *,
    num_tokens: int | None = None,
    weights: str | os.PathLike | None = None,
    **opts: Any,
) -> Path:
    """Encode one media file to a .tok file (default: the input's name with `.tok`)."""
    tokenizer = load(model, weights) if isinstance(model, str) else model
    (path,) = media_files([path], tokenizer.modality)
    output = Path(output) if output is not None else default_output(path, ".tok", None)
    for _ in encode_files(tokenizer, [path], [output], num_tokens=num_tokens, batch_size=1, **opts):
        pass
    return output


def tokenizer_for(path: str | os.PathLike, weights: str | os.PathLike | None = None, device: str | None = None) -> Tokenizer:
    """Load the model named in a .tok file's header."""
    return load(read_header(path)["model"], weights, device)


def decode_tokens(tokenizer: Tokenizer, tokens: Tokens, **opts: Any) -> Tensor:
    """Tokens -> media tensors in the modality's natural range (images: (B, 3, H, W) in [0, 1])."""
    return tokenizer.postprocess(tokenizer.decode(tokens.to(tokenizer.device), **opts))


def decode_file(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    model: Tokenizer | None = None,
    weights: str | os.PathLike | None = None,
    **opts: Any,
) -> Path:
    """Decode a .tok file to media (default: the input's name with the modality's suffix, e.g. `.png`)."""
    path = Path(path)
    tokens = Tokens.load(path)
    tokenizer = model if model is not None else load(tokens.model, weights)
    tokenizer.check_tokens(tokens, origin=str(path))
    opts = {k: v for k, v in opts.items() if v is not None}
    check_options(tokenizer.decode, opts, tokenizer.name)
    source = tokens.sources[0] if tokens.sources else None
    output = Path(output) if output is not None else path.with_suffix(tokenizer.output_suffix(source))
    return tokenizer.write_media(decode_tokens(tokenizer, tokens, **opts)[0], output, source)


__all__ = ["DEFAULT_SUFFIXES", "IMAGE_EXTENSIONS", "decode_file", "decode_tokens", "encode_file", "encode_files", "list_models", "load", "media_files"]
