"""Sample tokens from a trained AR model and decode them with the tokenizer that made its dataset."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..core import Tokenizer, Tokens, TokError
from .sampling import SamplingOptions, sample_streams
from .train import ARCheckpoint, load_ar

logger = logging.getLogger(__name__)


def resolve_labels(checkpoint: ARCheckpoint, label: str | int | None, num: int) -> Tensor:
    """`num` labels: the class given by name or index, every class in turn when none is given
    (conditional models), or the start token (unconditional models)."""
    classes = checkpoint.classes
    if not classes:
        if label is not None:
            raise TokError(f"the AR model is unconditional; it takes no class (got {label!r})")
        return torch.zeros(num, dtype=torch.long)
    if label is None:
        return torch.arange(num) % len(classes)
    if isinstance(label, str) and label in classes:
        index = classes.index(label)
    else:
        try:
            index = int(label)
        except ValueError:
            raise TokError(f"unknown class {label!r}; classes: {', '.join(classes)}") from None
        if not 0 <= index < len(classes):
            raise TokError(f"class label {index} out of range 0..{len(classes) - 1} ({', '.join(classes)})")
    return torch.full((num,), index, dtype=torch.long)


def check_tokenizer(checkpoint: ARCheckpoint, tokenizer: Tokenizer) -> None:
    """The tokenizer must be the one whose tokens the model learned."""
    layout, dataset = checkpoint.model.pattern.layout, checkpoint.dataset
    if tokenizer.name != dataset["model"]:
        raise TokError(f"the AR model was trained on tokens of {dataset['model']!r}, not {tokenizer.name!r}")
    if not tokenizer.layout.compatible_with(layout):
        raise TokError(f"the AR model's vocab {list(layout.vocab_sizes)} ({layout.kind}) does not match {tokenizer.name!r} {list(tokenizer.layout.vocab_sizes)} ({tokenizer.layout.kind})")
    if dataset["weights_digest"] and tokenizer.weights_digest and dataset["weights_digest"] != tokenizer.weights_digest:
        raise TokError(f"the AR model was trained on tokens of weights {dataset['weights_digest']}, but {tokenizer.name!r} has weights {tokenizer.weights_digest}")


@torch.inference_mode()
def generate(
    ar: str | os.PathLike | ARCheckpoint,
    num: int = 4,
    *,
    label: str | int | None = None,
    cfg: float = 1.0,
    cfg_schedule: str = "constant",
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    num_tokens: int | None = None,
    batch_size: int = 16,
    use_cache: bool = True,
    tokenizer: Tokenizer | None = None,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    out_dir: str | os.PathLike | None = None,
    decode: bool = True,
    **decode_opts: Any,
) -> tuple[Tokens, Tensor | None, list[Path]]:
    """Sample `num` items and decode them.

    Returns (tokens, media (B, ...) or None without `decode`, written files). With `out_dir`,
    each item is written as `sample-XXXX.tok` and as media in the tokenizer's modality (`.png`, `.wav`, ...).
    `num_tokens` stops a `sequence` pattern early (FlexTok's coarse-to-fine prefixes).
    """
    from ..api import decode_tokens, load

    options = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p, cfg=cfg, cfg_schedule=cfg_schedule)
    if num < 1:
        raise TokError(f"number of samples must be at least 1, got {num}")
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    checkpoint = ar if isinstance(ar, ARCheckpoint) else load_ar(ar, device)
    model = checkpoint.model.to(device)
    if tokenizer is None and decode:
        tokenizer = load(checkpoint.dataset["model"], weights, device)
    if tokenizer is not None:
        check_tokenizer(checkpoint, tokenizer)
    labels = resolve_labels(checkpoint, label, num)
    streams: list[list[Tensor]] = []
    for start in range(0, num, batch_size):
        chunk = labels[start : start + batch_size]
        streams.append(sample_streams(model, chunk, options=options, num_steps=num_tokens, seed=seed + start, use_cache=use_cache))
    classes = checkpoint.classes
    sources = [{"generated_by": "tok-ar", "class": classes[int(i)] if classes else None, "seed": seed} for i in labels]
    merged = [torch.cat([s[i] for s in streams]).cpu() for i in range(len(streams[0]))]
    layout = tokenizer.layout if tokenizer is not None else model.pattern.layout
    name = tokenizer.name if tokenizer is not None else checkpoint.dataset["model"]
    digest = tokenizer.weights_digest if tokenizer is not None else checkpoint.dataset["weights_digest"]
    tokens = Tokens(merged, layout, name, digest, sources)
    media = decode_tokens(tokenizer, tokens, **decode_opts).cpu() if decode else None
    written: list[Path] = []
    if out_dir is not None:
        out = Path(out_dir)
        for i in range(num):
            written.append(tokens[i].save(out / f"sample-{i:04d}.tok"))
            if media is not None:
                # The tokenizer writes its own modality (image, audio, video or mesh).
                target = out / f"sample-{i:04d}{tokenizer.output_suffix(sources[i])}"
                written.append(tokenizer.write_media(media[i], target, sources[i]))
    return tokens, media, written
