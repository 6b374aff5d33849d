"""Sampling from a `GPT`: temperature, top-k, top-p, classifier-free guidance, KV cache.

One loop serves every pattern: it walks the pattern's groups (one step for next-token patterns,
a whole scale for next-scale prediction, Q codebooks at once for the delay pattern) and predicts
every id of a group in one forward pass.

Classifier-free guidance (LlamaGen's constant schedule): with conditional logits c and the
null-class logits u of the same step, the sampled logits are

    u + cfg * (c - u)

so cfg = 1 is plain conditional sampling. With `cfg_schedule="linear"` (VAR, arXiv 2404.02905,
`autoregressive_infer_cfg`) group g of G uses u + (1 + t)(c - u) with t = cfg * g / (G - 1): the
first scale is unguided and the last gets weight 1 + cfg. Both branches run as one doubled batch
[conditional; null class] and the sampled ids feed both halves.

Then, in this order: divide by the temperature (0 = greedy), keep the `top_k` largest logits
(0 = off), keep the smallest set of ids whose probability reaches `top_p` (1 = off), sample.
Sampling draws one uniform number per id from a seeded generator and inverts the cumulative
distribution, so cached and uncached runs draw the same numbers and give the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..core import TokError
from .gpt import GPT


@dataclass(frozen=True)
class SamplingOptions:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    cfg: float = 1.0
    cfg_schedule: str = "constant"

    def __post_init__(self):
        if self.cfg_schedule not in ("constant", "linear"):
            raise TokError(f"unknown guidance schedule {self.cfg_schedule!r}; expected constant or linear")
        if not self.temperature >= 0:
            raise TokError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise TokError(f"top-p must be in (0, 1] (1 = off), got {self.top_p}")
        if self.top_k < 0:
            raise TokError(f"top-k must be >= 0 (0 = off), got {self.top_k}")
        if not self.cfg >= 0:
            raise TokError(f"classifier-free guidance scale must be >= 0 (1 = off), got {self.cfg}")


def filter_logits(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Set logits outside the top-k and outside the top-p nucleus to -inf (last axis)."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop an id when the ids ranked above it already reach top_p (the first always stays).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose(logits: Tensor, options: SamplingOptions, generator: torch.Generator | None) -> Tensor:
    """Logits (..., V) -> ids (...)."""
    logits = logits.float()
    uniform = torch.rand(logits.shape[:-1] + (1,), generator=generator, device=logits.device)
    if options.temperature == 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits / options.temperature, options.top_k, options.top_p)
    cumulative = logits.softmax(dim=-1).cumsum(dim=-1)
    ids = (cumulative < uniform * cumulative[..., -1:]).sum(dim=-1)
    return ids.clamp(max=logits.shape[-1] - 1)


@torch.inference_mode()
def sample(
    model: GPT,
    labels: Tensor,
    *,
    options: SamplingOptions = SamplingOptions(),
    num_steps: int | None = None,
    seed: int | None = 0,
    use_cache: bool = True,
) -> Tensor:
    """Sample ids (B, L', Q) in the model's pattern for B labels (an unconditional model takes zeros).

    Args:
        num_steps: stop after this many steps (FlexTok: the number of tokens); whole groups only.
        seed: seeds the sampling generator; None uses the global one.
        use_cache: reuse keys and values (one forward per group over its own steps) or recompute
            the whole prefix every group (the reference path).
    """
    pattern, device = model.pattern, model.output.weight.device
    labels = labels.to(device).long()
    model.check_labels(labels)
    guided = options.cfg != 1 if options.cfg_schedule == "constant" else options.cfg != 0
    if guided and not model.has_null_class:
        raise TokError("classifier-free guidance needs a class-conditional model trained with class dropout; use cfg 1")
    slices = pattern.group_slices()
    if num_steps is not None:
        if not 1 <= num_steps <= pattern.length or num_steps not in {end for _, end in slices}:
            raise TokError(f"cannot stop after {num_steps} steps: the pattern has {pattern.length} steps in groups ending at {[e for _, e in slices]}")
        slices = [(s, e) for s, e in slices if e <= num_steps]
    length = slices[-1][1]
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    batch = labels.shape[0]
    run_labels = torch.cat([labels, torch.full_like(labels, model.null_class)]) if guided else labels
    seq = torch.zeros(batch, length, pattern.width, dtype=torch.long, device=device)
    forced = pattern.forced.to(device)
    limits = pattern.vocab_limits.to(device)
    limited = bool((limits < model.vocab_size).any())
    vocab = torch.arange(model.vocab_size, device=device)
    cache = model.make_cache(run_labels.shape[0]) if use_cache else None
    model.eval()
    num_groups = len(pattern.group_slices())
    for group, (start, end) in enumerate(slices):
        first = start if use_cache else 0
        ids = pattern.inputs(seq, first, end)
        if guided:
            ids = torch.cat([ids, ids])
        logits = model(ids, run_labels, start=first, cache=cache, last=end - start)  # (B', l, Q, V)
        if guided:
            cond, uncond = logits.float().chunk(2)
            weight = options.cfg
            if options.cfg_schedule == "linear":
                weight = 1 + options.cfg * group / max(num_groups - 1, 1)
            logits = uncond + weight * (cond - uncond)
        if limited:
            logits = logits.masked_fill(vocab >= limits[start:end, :, None], float("-inf"))
        new = choose(logits, options, generator)
        seq[:, start:end] = torch.where(forced[start:end] >= 0, forced[start:end], new)
    return seq


def sample_streams(model: GPT, labels: Tensor, **kwargs) -> list[Tensor]:
    """Like `sample`, returned as the layout's streams (what `Tokens` holds)."""
    return model.pattern.from_sequence(sample(model, labels, **kwargs))
