"""Token patterns: any `TokenLayout` to one sequence for an AR model, and back.

A pattern turns the streams of one item into a sequence of L steps with Q ids per step
(Q = 1 except for the codebook delay pattern) and says, for every step:

- `positions` (L, A): coordinates for RoPE (1D index, (row, column), (time, row, column));
- `levels` (L,): a level id with its own learned embedding (the scale of next-scale prediction,
  the codebook of the flat codebook pattern; 0 otherwise);
- `groups` (L,): step i may attend to step j iff groups[j] <= groups[i]. Next-token patterns use
  groups = arange(L) (causal); next-scale prediction uses the scale index (VAR's block-causal
  mask, arXiv 2404.02905 Sec. 3). Steps of one group are predicted together when sampling;
- `sources` (L,): the step whose ids are the *input* at step i (-1: the class / start token).
  Next-token patterns feed step i-1. Next-scale prediction feeds the nearest cell of the previous
  scale (VAR feeds the upsampled accumulated feature map; a token model only has the previous
  scale's ids), and the class token to every cell of the first scale;
- `forced` (L, Q): an id that is not predicted but fixed (-1 where the model predicts). The delay
  pattern's empty slots hold the special id `card` (MusicGen, audiocraft `DelayedPatternProvider`);
- `vocab_limits` (L, Q): ids at or above the limit are never sampled at that slot.

Kinds: `sequence` (FlexTok: prefix order, so training on full sequences trains every prefix),
`grid` raster for 2D and 3D grids, `scales` next-scale prediction, `codebooks` with the delay
pattern (codebook q delayed by q steps) or flattened (t-major, the codebook as level; with one
codebook this is the plain sequence of frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..core import TokError
from ..core.tokens import TokenLayout

CODEBOOK_PATTERNS = ("delay", "flat")


@dataclass
class Pattern:
    """A layout's sequence form; build one with `build_pattern`.

    Args:
        layout: the token layout.
        shapes: each stream's shape without the batch axis.
        codebook_pattern: `delay` or `flat` (codebooks only).
    """

    layout: TokenLayout
    shapes: tuple[tuple[int, ...], ...]
    codebook_pattern: str = "delay"
    positions: Tensor = field(init=False)
    levels: Tensor = field(init=False)
    groups: Tensor = field(init=False)
    sources: Tensor = field(init=False)
    forced: Tensor = field(init=False)
    vocab_limits: Tensor = field(init=False)
    vocab_size: int = field(init=False)
    num_levels: int = field(init=False)

    def __post_init__(self):
        self.shapes = tuple(tuple(int(n) for n in s) for s in self.shapes)
        layout = self.layout
        if len(self.shapes) != layout.num_streams:
            raise TokError(f"layout has {layout.num_streams} streams but {len(self.shapes)} shapes were given")
        for shape, axes in zip(self.shapes, layout.axes):
            if len(shape) != len(axes) or min(shape, default=0) < 1:
                raise TokError(f"stream shape {shape} does not fit axes {axes}")
        if layout.kind != "scales" and layout.num_streams != 1:
            raise TokError(f"a {layout.kind!r} layout with {layout.num_streams} streams has no sequence pattern")
        if self.codebook_pattern not in CODEBOOK_PATTERNS:
            raise TokError(f"unknown codebook pattern {self.codebook_pattern!r}; expected one of {', '.join(CODEBOOK_PATTERNS)}")
        self.vocab_size = max(layout.vocab_sizes)
        self.num_levels = 1
        build = {"sequence": self._grid, "grid": self._grid, "scales": self._scales, "codebooks": self._codebooks}
        build[layout.kind]()

    # -- construction ----------------------------------------------------------------------
    def _next_token(self, length: int, width: int = 1) -> None:
        self.groups = torch.arange(length)
        self.sources = torch.arange(length) - 1
        self.levels = torch.zeros(length, dtype=torch.long)
        self.forced = torch.full((length, width), -1)
        self.vocab_limits = torch.full((length, width), self.vocab_size)

    def _grid(self) -> None:
        (shape,) = self.shapes
        # Raster order; one RoPE axis per grid axis (1D index, (row, col), (time, row, col)).
        self.positions = torch.cartesian_prod(*[torch.arange(n, dtype=torch.float32) for n in shape]).reshape(-1, len(shape))
        self._next_token(math.prod(shape))

    def _scales(self) -> None:
        ndims = {len(s) for s in self.shapes}
        if len(ndims) != 1:
            raise TokError(f"scales of different ranks {self.shapes} have no next-scale pattern")
        finest = self.shapes[-1]
        positions, levels, sources, limits = [], [], [], []
        offset = previous_offset = 0
        for k, (shape, vocab) in enumerate(zip(self.shapes, self.layout.vocab_sizes)):
            cells = torch.cartesian_prod(*[torch.arange(n) for n in shape]).reshape(-1, len(shape))
            # Cell centres on the finest grid, so coarse and fine tokens of one place are near
            # each other for RoPE.
            scale = torch.tensor([f / n for f, n in zip(finest, shape)])
            positions.append((cells + 0.5) * scale - 0.5)
            levels.append(torch.full((len(cells),), k))
            limits.append(torch.full((len(cells),), vocab))
            if k == 0:
                sources.append(torch.full((len(cells),), -1))
            else:
                parent_shape = torch.tensor(self.shapes[k - 1])
                parent = ((cells + 0.5) * parent_shape / torch.tensor(shape)).floor().long()
                strides = torch.tensor([math.prod(self.shapes[k - 1][i + 1 :]) for i in range(len(shape))])
                sources.append(previous_offset + (parent * strides).sum(-1))
            previous_offset, offset = offset, offset + len(cells)
        self.positions = torch.cat(positions).float()
        self.levels = torch.cat(levels)
        self.groups = self.levels.clone()
        self.sources = torch.cat(sources)
        self.vocab_limits = torch.cat(limits)[:, None]
        self.forced = torch.full_like(self.vocab_limits, -1)
        self.num_levels = len(self.shapes)

    def _codebooks(self) -> None:
        ((num_codebooks, frames),) = self.shapes
        card = self.layout.vocab_sizes[0]
        if self.codebook_pattern == "flat":
            length = num_codebooks * frames
            self.positions = torch.arange(length, dtype=torch.float32)[:, None]
            self._next_token(length)
            self.levels = torch.arange(num_codebooks).repeat(frames)  # t-major: (t0 q0, t0 q1, ...)
            self.num_levels = num_codebooks
            return
        # Delay pattern: codebook q of frame t sits at step t + q; steps without a frame hold
        # the special id `card`, which the model reads as input but never predicts.
        self.vocab_size = card + 1
        length = frames + num_codebooks - 1
        self.positions = torch.arange(length, dtype=torch.float32)[:, None]
        self._next_token(length, num_codebooks)
        self.vocab_limits.fill_(card)
        frame = torch.arange(length)[:, None] - torch.arange(num_codebooks)[None, :]  # (L, Q)
        self.forced = torch.where((frame >= 0) & (frame < frames), -1, card)

    # -- sizes -----------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return len(self.groups)

    @property
    def width(self) -> int:
        return self.forced.shape[1]

    @property
    def num_axes(self) -> int:
        return self.positions.shape[1]

    def group_slices(self) -> list[tuple[int, int]]:
        """Contiguous (start, end) step ranges predicted together, in sampling order."""
        bounds = (torch.nonzero(self.groups[1:] != self.groups[:-1]).flatten() + 1).tolist()
        starts, ends = [0, *bounds], [*bounds, self.length]
        return list(zip(starts, ends))

    def attention_mask(self) -> Tensor:
        """(L, L) boolean, True where step i may attend step j."""
        return self.groups[None, :] <= self.groups[:, None]

    @property
    def is_causal(self) -> bool:
        return bool((self.groups == torch.arange(self.length, device=self.groups.device)).all())

    # -- conversion ------------------------------------------------------------------------
    def check_streams(self, streams: list[Tensor]) -> None:
        if len(streams) != len(self.shapes):
            raise TokError(f"expected {len(self.shapes)} streams, got {len(streams)}")
        for i, (s, shape) in enumerate(zip(streams, self.shapes)):
            if tuple(s.shape[1:]) != shape:
                raise TokError(f"stream {i} has item shape {tuple(s.shape[1:])}, the pattern expects {shape}")

    def to_sequence(self, streams: list[Tensor]) -> Tensor:
        """Streams (each (B, *shape)) -> ids (B, L, Q)."""
        self.check_streams(streams)
        if self.layout.kind == "codebooks":
            (codes,) = streams  # (B, Q, T)
            if self.codebook_pattern == "flat":
                return codes.transpose(1, 2).reshape(codes.shape[0], -1, 1)
            batch, num_codebooks, frames = codes.shape
            seq = torch.full((batch, self.length, num_codebooks), self.vocab_size - 1, dtype=codes.dtype, device=codes.device)
            for q in range(num_codebooks):  # Q is small (<= 32); the time axis is vectorised
                seq[:, q : q + frames, q] = codes[:, q]
            return seq
        return torch.cat([s.reshape(s.shape[0], -1) for s in streams], dim=1)[..., None]

    def from_sequence(self, seq: Tensor) -> list[Tensor]:
        """Ids (B, L, Q) -> streams; for `sequence` a prefix (B, n <= L, 1) gives streams of n ids."""
        if seq.ndim != 3 or seq.shape[2] != self.width:
            raise TokError(f"expected a sequence (B, L, {self.width}), got {tuple(seq.shape)}")
        batch, length = seq.shape[:2]
        if self.layout.kind == "sequence" and 1 <= length <= self.length:
            return [seq[..., 0].contiguous()]
        if length != self.length:
            raise TokError(f"expected {self.length} steps, got {length}")
        if self.layout.kind == "codebooks":
            num_codebooks, frames = self.shapes[0]
            if self.codebook_pattern == "flat":
                return [seq[..., 0].reshape(batch, frames, num_codebooks).transpose(1, 2).contiguous()]
            return [torch.stack([seq[:, q : q + frames, q] for q in range(num_codebooks)], dim=1)]
        sizes = [math.prod(s) for s in self.shapes]
        return [part.reshape(batch, *shape).contiguous() for part, shape in zip(seq[..., 0].split(sizes, dim=1), self.shapes)]

    def inputs(self, seq: Tensor, start: int = 0, end: int | None = None) -> Tensor:
        """The model's input ids at steps [start, end) given the ids (B, >= sources, Q).

        Steps whose source is the class token get id 0; the model replaces their embedding.
        """
        sources = self.sources[start:end].to(seq.device)
        return seq[:, sources.clamp(min=0)].masked_fill((sources < 0)[None, :, None], 0)

    def targets(self, seq: Tensor, ignore_index: int = -100) -> Tensor:
        """Training targets: the ids, with forced slots set to `ignore_index`."""
        return seq.masked_fill(self.forced.to(seq.device)[None] >= 0, ignore_index)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict(), "shapes": [list(s) for s in self.shapes], "codebook_pattern": self.codebook_pattern}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pattern:
        return cls(TokenLayout.from_dict(d["layout"]), tuple(tuple(s) for s in d["shapes"]), d.get("codebook_pattern", "delay"))


def build_pattern(layout: TokenLayout, shapes: list[tuple[int, ...]] | tuple[tuple[int, ...], ...], codebook_pattern: str = "delay") -> Pattern:
    """The pattern of `layout` for items whose streams have `shapes` (without the batch axis)."""
    return Pattern(layout, tuple(tuple(s) for s in shapes), codebook_pattern)
