"""Token datasets: the tokens of a media folder as sharded memory-mapped arrays.

A dataset folder holds

    manifest.json            model, weights digest, layout, item shapes, class names, shards
    shard-00000.stream0.npy  (items, *stream shape) ids in the smallest sufficient integer type
    shard-00000.index.json   one entry per item: source path, class label, source description

Writing is resumable: a shard's arrays and index are written atomically first, then the
manifest that lists it is replaced atomically. The manifest is the only record of what is
done, so a run killed at any moment leaves complete shards plus, at worst, files the next run
overwrites; restarting encodes exactly the items that no listed shard holds.

Class labels come from sub-folder names (`DIR/<class>/<file>`); a folder with media only at
its top is unconditional.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..core import Tokens, TokError
from ..core.io import atomic_path
from ..core.tokens import TokenLayout
from .patterns import Pattern, build_pattern

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "tok-token-dataset"
FORMAT_VERSION = 1


def storage_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned (or int64) type holding ids below `vocab_size`."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass
class Manifest:
    """What a dataset holds; `shards` lists only completed shards."""

    model: str
    weights_digest: str
    layout: TokenLayout
    shapes: list[list[int]]
    classes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_items(self) -> int:
        return sum(s["num_items"] for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "weights_digest": self.weights_digest,
            "layout": self.layout.to_dict(),
            "shapes": self.shapes,
            "classes": self.classes,
            "options": self.options,
            "num_items": self.num_items,
            "shards": self.shards,
        }

    @classmethod
    def read(cls, root: Path) -> Manifest:
        path = root / MANIFEST
        if not path.is_file():
            raise TokError(f"{root}: not a token dataset (no {MANIFEST}); write one with `tok encode DIR --model NAME --dataset {root}`")
        try:
            d = json.loads(path.read_text())
            if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
                raise TokError(f"{path}: not a version-{FORMAT_VERSION} token dataset manifest")
            return cls(d["model"], d["weights_digest"], TokenLayout.from_dict(d["layout"]), d["shapes"], d["classes"], d["options"], d["shards"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise TokError(f"{path}: corrupt manifest ({type(e).__name__}: {e})") from None

    def write(self, root: Path) -> None:
        with atomic_path(root / MANIFEST) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))

    def describe(self) -> str:
        return f"model {self.model!r} (weights {self.weights_digest or 'unknown'}), {self.layout.kind} {self.layout.vocab_sizes}, shapes {self.shapes}"


class TokenDatasetWriter:
    """Appends shards to a dataset folder, refusing tokens of another tokenizer."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest: Manifest | None = Manifest.read(self.root) if (self.root / MANIFEST).exists() else None

    def done(self) -> set[str]:
        """Source paths already stored in completed shards."""
        if self.manifest is None:
            return set()
        return {item["path"] for shard in self.manifest.shards for item in self._index(shard)}

    def _index(self, shard: dict[str, Any]) -> list[dict[str, Any]]:
        return json.loads((self.root / shard["index"]).read_text())["items"]

    def start(self, tokens: Tokens, classes: list[str], options: dict[str, Any]) -> None:
        """Create the manifest from the first batch, or check that `tokens` fit the existing one."""
        shapes = [list(s[1:]) for s in tokens.shapes]
        incoming = Manifest(tokens.model, tokens.weights_digest, tokens.layout, shapes, list(classes), dict(options))
        if self.manifest is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self.manifest = incoming
            self.manifest.write(self.root)
            return
        mine = self.manifest
        same = (
            mine.model == incoming.model
            and mine.weights_digest == incoming.weights_digest
            and mine.layout.compatible_with(incoming.layout)
            and mine.shapes == incoming.shapes
            and mine.options == incoming.options
        )
        if not same:
            raise TokError(f"{self.root}: holds tokens of {mine.describe()}, options {mine.options}; cannot add tokens of {incoming.describe()}, options {incoming.options} (one tokenizer and one set of encoder options per dataset)")
        if mine.classes != incoming.classes:
            raise TokError(f"{self.root}: holds classes {mine.classes}, the input has classes {incoming.classes}")

    def write_shard(self, tokens: Tokens, labels: list[int], paths: list[str]) -> None:
        """Store one shard: arrays and index first, then the manifest that lists it."""
        if self.manifest is None:
            raise RuntimeError("call start() before write_shard()")
        if not (len(tokens) == len(labels) == len(paths)):
            raise ValueError("one label and one path per item")
        manifest = self.manifest
        if tokens.model != manifest.model or tokens.weights_digest != manifest.weights_digest or not tokens.layout.compatible_with(manifest.layout):
            raise TokError(f"{self.root}: cannot mix tokens of model {tokens.model!r} into a dataset of {manifest.describe()}")
        name = f"shard-{len(manifest.shards):05d}"
        streams = []
        for i, (stream, vocab) in enumerate(zip(tokens.streams, manifest.layout.vocab_sizes)):
            if list(stream.shape[1:]) != manifest.shapes[i]:
                raise TokError(f"{self.root}: stream {i} items have shape {list(stream.shape[1:])}, the dataset holds {manifest.shapes[i]}")
            file = f"{name}.stream{i}.npy"
            with atomic_path(self.root / file) as tmp, open(tmp, "wb") as f:
                np.save(f, stream.cpu().numpy().astype(storage_dtype(vocab)))
            streams.append(file)
        items = [{"path": p, "label": int(label), "source": s} for p, label, s in zip(paths, labels, tokens.sources)]
        index = f"{name}.index.json"
        with atomic_path(self.root / index) as tmp:
            tmp.write_text(json.dumps({"items": items}))
        manifest.shards.append({"name": name, "num_items": len(tokens), "streams": streams, "index": index})
        manifest.write(self.root)


def class_folders(folder: Path, modality: str) -> tuple[list[Path], list[int], list[str]]:
    """Media files of `folder` with their labels: one class per sub-folder (sorted names), or
    unconditional (labels -1) when the media sit at the top."""
    from ..api import media_files

    if not folder.is_dir():
        raise TokError(f"{folder}: no such folder")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    subfolders = [p for p in subfolders if _has_media(p, modality)]
    top = _has_media(folder, modality)
    if subfolders and top:
        raise TokError(f"{folder}: has media both at the top and in sub-folders; put every file in a class sub-folder, or none")
    if not subfolders:
        files = media_files([folder], modality)
        return files, [-1] * len(files), []
    files, labels = [], []
    for label, sub in enumerate(subfolders):
        found = media_files([sub], modality)
        files += found
        labels += [label] * len(found)
    return files, labels, [p.name for p in subfolders]


def _has_media(folder: Path, modality: str) -> bool:
    from ..api import media_files

    try:
        return bool(media_files([folder], modality))
    except TokError:
        return False


def encode_dataset(
    folder: str | os.PathLike,
    tokenizer: Any,
    out: str | os.PathLike,
    *,
    num_tokens: int | None = None,
    batch_size: int = 8,
    shard_size: int = 256,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Encode every media file of `folder` with `tokenizer` into the token dataset `out`.

    Resumes a dataset that was interrupted. `workers` threads encode different shards at once
    (torch releases the GIL in its kernels); shards are committed in order by the calling thread.
    `progress(n)` is called with the number of items finished (stored items count at the start).
    """
    from ..api import encode_files

    folder, root = Path(folder), Path(out)
    files, labels, classes = class_folders(folder, tokenizer.modality)
    tokenizer.check_num_tokens(num_tokens)
    writer = TokenDatasetWriter(root)
    done = writer.done()
    rel = [p.relative_to(folder).as_posix() for p in files]
    todo = [i for i, r in enumerate(rel) if r not in done]
    # Opt-in encoder paths can change ids, so a resume must use the same ones (the defaults add
    # nothing, which keeps datasets written before they were recorded resumable).
    options = {"num_tokens": num_tokens, **tokenizer.encoder_options}
    if writer.manifest is not None:
        # Check before encoding anything: resuming with another tokenizer or other classes.
        probe = Tokens([torch.zeros(0, *s, dtype=torch.long) for s in writer.manifest.shapes], tokenizer.layout, tokenizer.name, tokenizer.weights_digest)
        writer.start(probe, classes, options)
    if progress:
        progress(len(rel) - len(todo))
    pending = root / ".pending"
    chunks = [todo[start : start + shard_size] for start in range(0, len(todo), shard_size)]

    def encode_chunk(number: int, chunk: list[int]) -> Tokens:
        # The public API writes one .tok per item; the shard is assembled from them.
        chunk_dir = pending / f"{number:05d}"
        shutil.rmtree(chunk_dir, ignore_errors=True)
        chunk_dir.mkdir(parents=True)
        outputs = [chunk_dir / f"{n:06d}.tok" for n in range(len(chunk))]
        for _ in encode_files(tokenizer, [files[i] for i in chunk], outputs, num_tokens=num_tokens, batch_size=batch_size):
            if progress:
                progress(1)
        tokens = Tokens.cat([Tokens.load(p) for p in outputs])
        shutil.rmtree(chunk_dir)
        return tokens

    def commit(chunk: list[int], tokens: Tokens) -> None:
        if writer.manifest is None:
            writer.start(tokens, classes, options)
        writer.write_shard(tokens, [labels[i] for i in chunk], [rel[i] for i in chunk])

    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for chunk, tokens in zip(chunks, pool.map(encode_chunk, range(len(chunks)), chunks)):
                commit(chunk, tokens)
    else:
        for number, chunk in enumerate(chunks):
            commit(chunk, encode_chunk(number, chunk))
    shutil.rmtree(pending, ignore_errors=True)
    if writer.manifest is None:
        raise TokError(f"{folder}: nothing to encode")
    return writer.manifest


class TokenDataset(Dataset):
    """Reads a token dataset: item i -> (streams [each (*shape) int64], label int (-1: none)).

    Arrays are memory-mapped, so opening a dataset costs no reading of ids.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.manifest = Manifest.read(self.root)
        self.arrays: list[list[np.ndarray]] = []
        self.labels: list[int] = []
        self.paths: list[str] = []
        self.locations: list[tuple[int, int]] = []
        for s, shard in enumerate(self.manifest.shards):
            arrays = []
            for i, file in enumerate(shard["streams"]):
                try:
                    array = np.load(self.root / file, mmap_mode="r")
                except (OSError, ValueError) as e:
                    raise TokError(f"{self.root / file}: unreadable shard ({e})") from None
                expected = (shard["num_items"], *self.manifest.shapes[i])
                if array.shape != expected:
                    raise TokError(f"{self.root / file}: shard holds {array.shape}, the manifest says {expected}")
                arrays.append(array)
            self.arrays.append(arrays)
            items = json.loads((self.root / shard["index"]).read_text())["items"]
            self.labels += [item["label"] for item in items]
            self.paths += [item["path"] for item in items]
            self.locations += [(s, row) for row in range(shard["num_items"])]
        classes = self.manifest.classes
        if any(not -1 <= label < len(classes) or (label == -1) != (not classes) for label in self.labels):
            raise TokError(f"{self.root}: class labels outside 0..{len(classes) - 1} for classes {classes}")

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes

    @property
    def layout(self) -> TokenLayout:
        return self.manifest.layout

    def pattern(self, codebook_pattern: str = "delay") -> Pattern:
        return build_pattern(self.layout, [tuple(s) for s in self.manifest.shapes], codebook_pattern)

    def __len__(self) -> int:
        return len(self.locations)

    def __getitem__(self, index: int) -> tuple[list[Tensor], int]:
        shard, row = self.locations[index]
        return [torch.from_numpy(a[row].astype(np.int64)) for a in self.arrays[shard]], self.labels[index]


class TokenSequences(Dataset):
    """A token dataset in a pattern's sequence form: item -> (ids (L, Q) int64, label).

    Unconditional items get label 0 (the start token of an unconditional model).
    """

    def __init__(self, dataset: TokenDataset, pattern: Pattern | None = None, indices: list[int] | None = None):
        self.dataset = dataset
        self.pattern = pattern or dataset.pattern()
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        streams, label = self.dataset[self.indices[index]]
        seq = self.pattern.to_sequence([s[None] for s in streams])[0]
        return seq, max(label, 0)

    def batches(self, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """All items in order, in batches (for validation)."""
        for start in range(0, len(self), batch_size):
            items = [self[i] for i in range(start, min(start + batch_size, len(self)))]
            yield torch.stack([s for s, _ in items]), torch.tensor([label for _, label in items])
