"""Boolean attention masks over sequences made of consecutive segments (scales, frames, ...).

Masks follow SDPA's boolean convention: True where a query (row) may attend a key (column).
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_ids(lengths: tuple[int, ...] | list[int], device: torch.device | str | None = None) -> Tensor:
    """(sum(lengths),) index of the segment each position belongs to, e.g. (1, 4) -> [0, 1, 1, 1, 1]."""
    if any(n < 1 for n in lengths):
        raise ValueError(f"segment lengths must be positive, got {tuple(lengths)}")
    counts = torch.tensor(list(lengths), device=device)
    return torch.repeat_interleave(torch.arange(len(lengths), device=device), counts, output_size=sum(lengths))


def block_causal_mask(lengths: tuple[int, ...] | list[int], device: torch.device | str | None = None) -> Tensor:
    """(L, L) mask where a position of segment i attends every position of segments <= i.

    Inside a segment attention is bidirectional; across segments it only flows from earlier
    (e.g. coarser scales) to later ones. This is VAR's next-scale mask and HieraTok's
    scale-causal mask.
    """
    ids = segment_ids(lengths, device)
    return ids[:, None] >= ids[None, :]
