"""pFID: FID of reconstructions decoded from perturbed tokens (Qiu et al., arXiv 2503.08354).

rFID decodes clean tokens; an AR generator hands the decoder tokens with sampling errors. pFID
simulates those errors with an operation on `Tokens` that needs only the tokenizer's codebook:

1. for every token, draw u ~ U(0, 1) (a seeded generator; same seed, same batches -> same tokens);
2. where u < α, replace the id by one of its δ nearest codebook entries (Euclidean in code
   space; FSQ: the nearest lattice points), chosen uniformly; ties go to the smaller id;
3. decode, then FID against the same originals rFID uses.

By default the δ candidates exclude the token itself, so a fraction α of tokens changes. The
released RobustTok training operator draws among the δ nearest *including* the current code
(so only α(δ−1)/δ change) and measures neighbours of the encoder output z rather than of the
chosen code; `include_self=True` gives the former. The authors' metric settings are not
released; ours are α = 0.5, δ = 10, seed 0, every image perturbed. Always report (α, δ) with
the number. α = 0 leaves the tokens untouched, so pFID(α=0) = rFID.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..core.errors import TokError
from ..core.quantize import Quantizer
from ..core.tokenizer import Tokenizer
from ..core.tokens import Tokens

PFID_ALPHA = 0.5
PFID_DELTA = 10
PFID_SEED = 0


def perturb_tokens(
    tokens: Tokens,
    quantizer: Quantizer,
    alpha: float = PFID_ALPHA,
    delta: int = PFID_DELTA,
    *,
    generator: torch.Generator | None = None,
    seed: int = PFID_SEED,
    include_self: bool = False,
) -> Tokens:
    """A copy of `tokens` with a fraction `alpha` of ids moved to one of their `delta` nearest codes."""
    if not 0.0 <= alpha <= 1.0:
        raise TokError(f"perturbation rate alpha must lie in [0, 1], got {alpha}")
    if delta < 1:
        raise TokError(f"number of neighbours delta must be at least 1, got {delta}")
    if not hasattr(quantizer, "neighbours"):
        raise TokError(f"{type(quantizer).__name__} has no codebook neighbours; pFID needs a VQ or FSQ quantizer")
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    streams = []
    for stream, vocab in zip(tokens.streams, tokens.layout.vocab_sizes):
        if vocab != quantizer.vocab_size:
            raise TokError(f"tokens have a vocabulary of {vocab}, the quantizer {quantizer.vocab_size}")
        u = torch.rand(stream.shape, generator=generator)
        choice = torch.randint(0 if include_self else 1, delta + (0 if include_self else 1), stream.shape, generator=generator)
        if alpha == 0.0:
            streams.append(stream.clone())
            continue
        k = delta if include_self else delta + 1
        candidates = quantizer.neighbours(stream.cpu(), min(k, quantizer.vocab_size))
        replaced = torch.gather(candidates, -1, choice.clamp_max(candidates.shape[-1] - 1)[..., None])[..., 0]
        streams.append(torch.where(u < alpha, replaced, stream.cpu()).to(stream.device, stream.dtype))
    return tokens.replace_streams(streams)


def quantizer_of(tokenizer: Tokenizer) -> Quantizer:
    quantizer = getattr(tokenizer, "quantizer", None)
    if not isinstance(quantizer, Quantizer):
        raise TokError(f"model {tokenizer.name!r} exposes no quantizer; pFID needs its codebook")
    return quantizer


def pfid(
    tokenizer: Tokenizer,
    images: Tensor | list[Tensor],
    *,
    alpha: float = PFID_ALPHA,
    delta: int = PFID_DELTA,
    seed: int = PFID_SEED,
    include_self: bool = False,
    batch_size: int = 8,
    encode_opts: dict[str, Any] | None = None,
    decode_opts: dict[str, Any] | None = None,
    **fid_opts: Any,
) -> float:
    """pFID of an image tokenizer on `images` ((B, 3, H, W) in [0, 1], or a list of (3, H, W)).

    The originals are the model's own view of the images (`postprocess(preprocess(x))`, e.g. the
    256×256 centre crop), as for rFID; `fid_opts` go to `metrics.fid` (weights, device, layer)."""
    from .fid import FID_LAYER, InceptionFeatures, frechet_distance, statistics

    if tokenizer.modality != "image":
        raise TokError(f"pFID is an image metric; model {tokenizer.name!r} is a {tokenizer.modality} model")
    items = list(images) if not isinstance(images, Tensor) else list(images if images.ndim == 4 else images[None])
    if len(items) < 2:
        raise TokError(f"pFID needs at least 2 images, got {len(items)}")
    layer = fid_opts.pop("layer", FID_LAYER)
    originals = InceptionFeatures((layer,), **fid_opts)
    perturbed = InceptionFeatures((layer,), **fid_opts)
    generator = torch.Generator().manual_seed(seed)
    quantizer = quantizer_of(tokenizer)
    for start in range(0, len(items), batch_size):
        x = torch.cat([tokenizer.preprocess(item) for item in items[start : start + batch_size]]).to(tokenizer.device)
        tokens = tokenizer.encode(x, **(encode_opts or {}))
        tokens = perturb_tokens(tokens, quantizer, alpha, delta, generator=generator, include_self=include_self)
        originals.update(tokenizer.postprocess(x))
        perturbed.update(tokenizer.postprocess(tokenizer.decode(tokens, **(decode_opts or {}))))
    return frechet_distance(statistics(perturbed.features()), statistics(originals.features()))
