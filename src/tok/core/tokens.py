"""Tokens (integer ids plus a layout saying what they mean) and the `.tok` file format.

A `.tok` file is a safetensors file: the integer tensors `stream.0`, `stream.1`, ... (stored in the
smallest integer type that holds the vocabulary) and one metadata entry `tok` holding a JSON header:

    {"format_version": 1, "model": "flextok-small", "weights_digest": "…",
     "layout": {...TokenLayout...}, "sources": [{...one dict per batch item...}],
     "encoder_options": {"cpu_int8": true}}

`encoder_options` is present only when an opt-in inference path that can change ids made them
(readers take its absence as the default, exact path).

Files are written to a temporary name and renamed, so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .errors import TokError
from .io import atomic_path

FORMAT_VERSION = 1
LAYOUT_KINDS = ("sequence", "grid", "scales", "codebooks")
# Number of axes after the batch axis that each kind allows per stream.
_KIND_NDIMS = {"sequence": (1,), "grid": (2, 3), "scales": (1, 2, 3), "codebooks": (2,)}


@dataclass(frozen=True)
class TokenLayout:
    """What the ids of a `Tokens` mean.

    Args:
        kind: `sequence` (B, N) ordered 1D (FlexTok); `grid` (B, H, W) or (B, T, H, W);
            `scales` one stream per scale (HieraTok, TokenFlow, VAT); `codebooks` (B, Q, T)
            residual audio codes.
        vocab_sizes: vocabulary size of each stream (one entry per stream).
        axes: axis names of each stream after the batch axis, e.g. `(("n",),)` or `(("q", "t"),)`.
        rates: optional rates, e.g. `{"tokens_per_second": 75.0}` or `{"frames_per_second": 8.0}`.
        extra: static facts the decoder needs (e.g. `{"image_size": 256}` or `{"sample_rate": 24000}`).
    """

    kind: str
    vocab_sizes: tuple[int, ...]
    axes: tuple[tuple[str, ...], ...]
    rates: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in LAYOUT_KINDS:
            raise TokError(f"unknown token layout kind {self.kind!r}; expected one of {', '.join(LAYOUT_KINDS)}")
        object.__setattr__(self, "vocab_sizes", tuple(int(v) for v in self.vocab_sizes))
        object.__setattr__(self, "axes", tuple(tuple(a) for a in self.axes))
        if len(self.vocab_sizes) != len(self.axes):
            raise TokError(f"layout has {len(self.vocab_sizes)} vocab sizes but {len(self.axes)} axis lists")
        if any(v < 1 for v in self.vocab_sizes):
            raise TokError(f"vocab sizes must be positive, got {self.vocab_sizes}")
        for names in self.axes:
            if len(names) not in _KIND_NDIMS[self.kind]:
                raise TokError(f"a {self.kind!r} stream cannot have axes {names}")

    @property
    def num_streams(self) -> int:
        return len(self.vocab_sizes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vocab_sizes"] = list(self.vocab_sizes)
        d["axes"] = [list(a) for a in self.axes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TokenLayout":
        unknown = set(d) - {"kind", "vocab_sizes", "axes", "rates", "extra"}
        if unknown:
            raise TokError(f"unknown token layout fields: {', '.join(sorted(unknown))}")
        return cls(
            kind=d["kind"],
            vocab_sizes=tuple(d["vocab_sizes"]),
            axes=tuple(tuple(a) for a in d["axes"]),
            rates=dict(d.get("rates", {})),
            extra=dict(d.get("extra", {})),
        )

    def compatible_with(self, other: "TokenLayout") -> bool:
        """Same kind, vocabularies and axes; rates and extras may carry per-file details."""
        return (self.kind, self.vocab_sizes, self.axes) == (other.kind, other.vocab_sizes, other.axes)


def _storage_dtype(vocab_size: int) -> torch.dtype:
    if vocab_size <= 2**16:
        return torch.uint16
    if vocab_size <= 2**31:
        return torch.int32
    return torch.int64


@dataclass
class Tokens:
    """A batch of token ids from one model.

    Args:
        streams: integer tensors, each with a leading batch axis B; shapes per `layout.kind`.
        layout: what the ids mean.
        model: zoo name of the model that made them (checked when decoding).
        weights_digest: short digest of the weights that made them ("" when unknown).
        sources: one dict per batch item describing the source media (path, size, ...).
        encoder_options: the opt-in encoder paths that were on and can change ids (e.g.
            `{"cpu_int8": True}`; see `Tokenizer.encoder_options`); empty for the default path.
    """

    streams: list[Tensor]
    layout: TokenLayout
    model: str
    weights_digest: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    encoder_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.streams = [s if isinstance(s, Tensor) else torch.as_tensor(s) for s in self.streams]
        if len(self.streams) != self.layout.num_streams:
            raise TokError(f"layout expects {self.layout.num_streams} streams, got {len(self.streams)}")
        batch_sizes = {s.shape[0] if s.ndim else -1 for s in self.streams}
        if len(batch_sizes) != 1 or -1 in batch_sizes:
            raise TokError(f"every stream needs the same leading batch axis, got shapes {self.shapes}")
        for i, (s, names) in enumerate(zip(self.streams, self.layout.axes)):
            if s.dtype.is_floating_point or s.dtype.is_complex or s.dtype == torch.bool:
                raise TokError(f"stream {i} must hold integer ids, got {s.dtype}")
            if s.ndim != len(names) + 1:
                raise TokError(f"stream {i} has shape {tuple(s.shape)}, expected (B, {', '.join(names)})")
        if not self.sources:
            self.sources = [{} for _ in range(self.batch_size)]
        if len(self.sources) != self.batch_size:
            raise TokError(f"{len(self.sources)} source descriptions for a batch of {self.batch_size}")
        self.validate_ids()

    # -- views ---------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self.streams[0].shape[0])

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s.shape) for s in self.streams]

    @property
    def num_tokens(self) -> int:
        """Tokens per batch item, summed over streams."""
        return sum(s[0].numel() for s in self.streams) if self.batch_size else 0

    @property
    def bits(self) -> float:
        """Information per batch item if every id were coded with log2(vocab) bits."""
        return sum(s[0].numel() * float(torch.tensor(v).log2()) for s, v in zip(self.streams, self.layout.vocab_sizes))

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int | slice) -> "Tokens":
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self.replace_streams([s[index] for s in self.streams], self.sources[index])

    def to(self, device: torch.device | str) -> "Tokens":
        return self.replace_streams([s.to(device) for s in self.streams])

    def replace_streams(self, streams: list[Tensor], sources: list[dict[str, Any]] | None = None) -> "Tokens":
        """New ids (and optionally sources) with this batch's model, digest, layout and options."""
        sources = list(self.sources) if sources is None else sources
        return Tokens(streams, self.layout, self.model, self.weights_digest, sources, dict(self.encoder_options))

    @staticmethod
    def cat(items: list["Tokens"]) -> "Tokens":
        """Concatenate batches from the same model and layout along the batch axis."""
        if not items:
            raise TokError("nothing to concatenate")
        first = items[0]
        for t in items[1:]:
            if t.model != first.model or not t.layout.compatible_with(first.layout):
                raise TokError(f"cannot concatenate tokens of {t.model!r} with tokens of {first.model!r}")
            if t.encoder_options != first.encoder_options:
                raise TokError(
                    f"cannot concatenate tokens encoded with options {t.encoder_options or 'default'} "
                    f"and with {first.encoder_options or 'default'}")
            if t.shapes[0][1:] != first.shapes[0][1:]:
                raise TokError(f"cannot concatenate streams of shapes {t.shapes} and {first.shapes}")
        streams = [torch.cat([t.streams[i] for t in items]) for i in range(first.layout.num_streams)]
        return first.replace_streams(streams, [s for t in items for s in t.sources])

    def validate_ids(self, origin: str = "") -> None:
        prefix = f"{origin}: " if origin else ""
        for i, (s, vocab) in enumerate(zip(self.streams, self.layout.vocab_sizes)):
            if s.numel() == 0:
                continue
            low, high = int(s.min()), int(s.max())
            if low < 0 or high >= vocab:
                raise TokError(f"{prefix}stream {i} has ids in [{low}, {high}], outside the vocabulary [0, {vocab})")

    # -- files ---------------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        header = {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "weights_digest": self.weights_digest,
            "layout": self.layout.to_dict(),
            "sources": self.sources,
        }
        if self.encoder_options:
            header["encoder_options"] = self.encoder_options
        return header

    def save(self, path: str | os.PathLike) -> Path:
        """Write a `.tok` file atomically (temporary file + rename)."""
        path = Path(path)
        tensors = {
            f"stream.{i}": s.detach().to("cpu", _storage_dtype(v)).contiguous()
            for i, (s, v) in enumerate(zip(self.streams, self.layout.vocab_sizes))
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"tok": json.dumps(self.header())})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokens":
        """Read and validate a `.tok` file; every problem is a `TokError` naming the file."""
        path = Path(path)
        header = read_header(path)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise TokError(f"{path}: not a valid .tok file ({e})") from None
        try:
            layout = TokenLayout.from_dict(header["layout"])
            names = [f"stream.{i}" for i in range(layout.num_streams)]
            missing = [n for n in names if n not in tensors]
            if missing or len(tensors) != len(names):
                raise TokError(f"expected tensors {names}, found {sorted(tensors)}")
            streams = [tensors[n].to(torch.int64) for n in names]
            options = header.get("encoder_options", {})
            if not isinstance(options, dict):
                raise TokError(f"encoder_options must be a JSON object, got {options!r}")
            tokens = cls(streams, layout, header["model"], header.get("weights_digest", ""), header.get("sources", []), options)
        except TokError as e:
            raise TokError(f"{path}: {e}") from None
        except (KeyError, TypeError) as e:
            raise TokError(f"{path}: malformed .tok header ({e})") from None
        return tokens


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read only the JSON header of a `.tok` file (cheap: no tensor data)."""
    path = Path(path)
    if not path.is_file():
        raise TokError(f"{path}: no such token file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise TokError(f"{path}: not a valid .tok file ({e})") from None
    if "tok" not in meta:
        raise TokError(f"{path}: safetensors file without a tok header (not written by tok)")
    try:
        header = json.loads(meta["tok"])
    except json.JSONDecodeError as e:
        raise TokError(f"{path}: corrupt tok header ({e})") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise TokError(f"{path}: .tok format version {version!r} is not supported (this tok reads {FORMAT_VERSION})")
    return header
