"""The Quantizer contract and adapters over vector-quantize-pytorch.

Every quantizer maps continuous latents to ids and back:

    forward(z) -> QuantizerOutput(z_q, ids, loss)      z: (B, ..., D) channel-last
    ids_to_codes(ids) -> z_q                           exact inverse of the ids part of forward (eval mode)
    vocab_size                                         ids lie in [0, vocab_size)

Adapters keep the library's known pitfalls out of model code (reference/library-apis.md):
residual VQ only works channel-last on flattened positions, FSQ ids come back as int32, EMA
codebooks change in train mode so ids are only decodable from eval-mode forwards.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from torch import Tensor, nn

from .errors import TokError


@dataclass
class QuantizerOutput:
    """z_q: quantized latents, same shape as the input; ids: int64; loss: scalar auxiliary loss.

    parts: optional named terms of `loss` (e.g. {"codebook": ..., "commit": ...}) for logging.
    """

    z_q: Tensor
    ids: Tensor | tuple[Tensor, ...]
    loss: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class Quantizer(nn.Module):
    """Base class: subclasses set `vocab_size` and `dim` and implement `forward` / `ids_to_codes`."""

    vocab_size: int
    dim: int

    def check_input(self, z: Tensor) -> None:
        if z.ndim < 2 or z.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects channel-last latents (B, ..., {self.dim}), got {tuple(z.shape)}"
            )

    def forward(self, z: Tensor) -> QuantizerOutput:
        raise NotImplementedError

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        raise NotImplementedError

    def codebook(self) -> Tensor:
        """All codes (vocab_size, dim), row i the code of id i (single-codebook quantizers)."""
        ids = torch.arange(self.vocab_size, device=_device_of(self))
        return self.ids_to_codes(ids[None])[0]

    @torch.no_grad()
    def neighbours(self, ids: Tensor, k: int) -> Tensor:
        """ids (...) -> (..., k): the k codebook entries nearest (Euclidean, in code space) to each
        id's code, nearest first; entry 0 is the id itself. Ties go to the smaller id.

        Brute force over the codebook in chunks; FSQ overrides this with a lattice search."""
        _check_k(k, self.vocab_size)
        codes = self.codebook().double()
        flat = ids.reshape(-1).long().to(codes.device)
        out = []
        for start in range(0, flat.numel(), 1024):
            d2 = torch.cdist(codes[flat[start : start + 1024]], codes).pow(2)
            # Rounded so that float noise cannot reorder exact ties; stable sort keeps id order.
            order = torch.sort(torch.round(d2 * 1e9), dim=1, stable=True).indices
            out.append(order[:, :k])
        return torch.cat(out).reshape(*ids.shape, k).to(ids.device)


def row_blocks(n: int, rows: int) -> list[int]:
    """Sizes of consecutive blocks of about `rows` rows covering n rows, for nearest-code searches
    whose (rows, codebook) distances should stay in the cache. No block is shorter than `rows`
    unless n itself is: a short last block joins the one before. Why: BLAS takes other kernels for
    products of a few rows (measured with MKL: 1-3, 5-7 and 9-11 rows sum in another order), so a
    short block could round differently from an official one-product search over all n rows;
    blocks of 12 rows or more reproduce its bits."""
    if n < 2 * rows:
        return [n]
    return [rows] * (n // rows - 1) + [rows + n % rows]


def _device_of(module: nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _check_k(k: int, vocab_size: int) -> None:
    if not 1 <= k <= vocab_size:
        raise TokError(f"number of neighbours must lie in 1..{vocab_size}, got {k}")


class FSQQuantizer(Quantizer):
    """Finite scalar quantization (Mentzer et al., arXiv 2309.15505) over `vector_quantize_pytorch.FSQ`.

    No projections (dim == len(levels)) and no learnable parameters, hence no checkpoint keys.
    The id of a code is sum_i digit_i * prod(levels[:i]), the convention FlexTok's ids use.
    """

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        from vector_quantize_pytorch import FSQ

        self.levels = tuple(levels)
        self.dim = len(self.levels)
        # Built on the CPU even under a meta/cuda default device: FSQ computes its codebook size
        # with .item() at construction; its buffers are tiny and move with the module.
        with torch.device("cpu"):
            self.fsq = FSQ(levels=list(self.levels), dim=self.dim)
        self.vocab_size = int(self.fsq.codebook_size)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        # Rounding runs in fp32 whatever the autocast state (bf16 rounding corrupts ids).
        with torch.autocast(z.device.type, enabled=False):
            z_q, ids = self.fsq(z.float())
        return QuantizerOutput(z_q.to(z.dtype), ids.long(), z.new_zeros(()))

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        return self.fsq.indices_to_codes(ids)

    @torch.no_grad()
    def neighbours(self, ids: Tensor, k: int) -> Tensor:
        """The k nearest lattice points (same contract as `Quantizer.neighbours`), without
        scanning the codebook: candidates are the digit offsets no farther than the k-th nearest
        point seen from a lattice corner, which has the fewest points within any radius."""
        _check_k(k, self.vocab_size)
        levels = torch.tensor(self.levels)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), levels[:-1]]), 0)
        # Code-space step of one digit in each dimension (FSQ codes are evenly spaced per dim).
        probe = torch.cat([torch.zeros(1, dtype=torch.long), basis])[None].to(_device_of(self))
        codes = self.ids_to_codes(probe)[0].double().cpu()  # id 0, then one step in each dimension
        step = (codes[1:] - codes[0]).diagonal()

        def grid(ranges: list[Tensor]) -> Tensor:
            return torch.cartesian_prod(*ranges).reshape(-1, len(ranges))

        def key(offsets: Tensor) -> Tensor:
            # Sort key: squared distance (rounded against float noise), then the id change.
            d2 = torch.round((offsets.double() * step).pow(2).sum(1) * 1e9)
            return d2 * (2 * self.vocab_size) + (offsets * basis).sum(1) + self.vocab_size

        corner = grid([torch.arange(n) for n in self.levels])  # offsets valid from digit 0 everywhere
        radius2 = torch.round((corner.double() * step).pow(2).sum(1) * 1e9).kthvalue(k).values
        reach = [min(n - 1, int((float(radius2) / 1e9) ** 0.5 / float(s) + 1e-9)) for n, s in zip(self.levels, step)]
        offsets = grid([torch.arange(-r, r + 1) for r in reach])
        offsets = offsets[torch.round((offsets.double() * step).pow(2).sum(1) * 1e9) <= radius2]
        offsets = offsets[torch.argsort(key(offsets))]  # (M, D), nearest first

        flat = ids.reshape(-1).long().cpu()
        digits = (flat[:, None] // basis) % levels  # (T, D)
        moved = digits[:, None, :] + offsets[None]  # (T, M, D)
        valid = ((moved >= 0) & (moved < levels)).all(-1)
        # First k valid candidates per token, keeping the sorted order.
        rank = torch.where(valid, torch.arange(offsets.shape[0]), offsets.shape[0] + torch.arange(offsets.shape[0]))
        pick = torch.argsort(rank, dim=1)[:, :k]
        chosen = torch.gather(moved, 1, pick[..., None].expand(-1, -1, len(self.levels)))
        return (chosen * basis).sum(-1).reshape(*ids.shape, k).to(ids.device)


class VQQuantizer(Quantizer):
    """Nearest-neighbour vector quantization (VQ-VAE) over `vector_quantize_pytorch.VectorQuantize`."""

    def __init__(self, dim: int, codebook_size: int, **kwargs):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.dim, self.vocab_size = dim, codebook_size
        self.vq = VectorQuantize(dim=dim, codebook_size=codebook_size, **kwargs)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        flat, packed_shape = pack([z], "b * d")
        z_q, ids, loss = self.vq(flat)
        (z_q,) = unpack(z_q, packed_shape, "b * d")
        (ids,) = unpack(ids, packed_shape, "b *")
        return QuantizerOutput(z_q, ids.long(), loss.sum())

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        flat, packed_shape = pack([ids], "b *")
        (codes,) = unpack(self.vq.get_output_from_indices(flat), packed_shape, "b * d")
        return codes


class ResidualVQQuantizer(Quantizer):
    """Residual VQ (SoundStream, arXiv 2107.03312) over `vector_quantize_pytorch.ResidualVQ`.

    ids come back as (B, Q, ...) so audio codes match the `codebooks` layout (B, Q, T).
    """

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int, **kwargs):
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.dim, self.vocab_size, self.num_quantizers = dim, codebook_size, num_quantizers
        # The library's channel-first and image paths are broken in 1.32.0: always feed (B, N, D).
        self.rvq = ResidualVQ(dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size, **kwargs)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> QuantizerOutput:
        """mask: optional boolean (B, ...) over positions, False on padding: padded positions
        stay out of the losses, the EMA statistics and k-means (their ids are meaningless)."""
        self.check_input(z)
        flat, packed_shape = pack([z], "b * d")
        if mask is not None:
            mask, _ = pack([mask], "b *")
        z_q, ids, losses = self.rvq(flat, mask=mask)  # ids (B, N, Q)
        (z_q,) = unpack(z_q, packed_shape, "b * d")
        (ids,) = unpack(rearrange(ids, "b n q -> b q n"), packed_shape, "b q *")
        return QuantizerOutput(z_q, ids.long(), losses.sum())

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        if ids.ndim < 3 or ids.shape[1] != self.num_quantizers:
            raise ValueError(f"expected ids (B, {self.num_quantizers}, ...), got {tuple(ids.shape)}")
        flat, packed_shape = pack([ids], "b q *")
        codes = self.rvq.get_output_from_indices(rearrange(flat, "b q n -> b n q"))
        (codes,) = unpack(codes, packed_shape, "b * d")
        return codes


class HierarchicalVQQuantizer(Quantizer):
    """VAR-style multi-scale residual VQ (arXiv 2404.02905) over `vector_quantize_pytorch.HierarchicalVQ`.

    Input is a channel-last feature map (B, H, W, D); ids are one (B, s, s) tensor per scale.
    """

    def __init__(self, dim: int, codebook_size: int, scales: tuple[int, ...], **kwargs):
        super().__init__()
        from vector_quantize_pytorch import HierarchicalVQ

        self.dim, self.vocab_size, self.scales = dim, codebook_size, tuple(scales)
        self.hvq = HierarchicalVQ(
            dim=dim, codebook_size=codebook_size, scales=list(self.scales), accept_image_fmap=True, **kwargs
        )

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        if z.ndim != 4 or z.shape[1] != z.shape[2] or z.shape[1] != self.scales[-1]:
            raise ValueError(f"expected a (B, {self.scales[-1]}, {self.scales[-1]}, {self.dim}) map, got {tuple(z.shape)}")
        z_q, ids, loss = self.hvq(rearrange(z, "b h w d -> b d h w"))
        return QuantizerOutput(rearrange(z_q, "b d h w -> b h w d"), tuple(i.long() for i in ids), loss.sum())

    def ids_to_codes(self, ids: tuple[Tensor, ...]) -> Tensor:
        if len(ids) != len(self.scales):
            raise ValueError(f"expected {len(self.scales)} scales of ids, got {len(ids)}")
        return rearrange(self.hvq.get_output_from_indices(list(ids)), "b d h w -> b h w d")


# -- multi-scale residual quantization (VAR, TokenFlow, VAT) ---------------------------------------

Scale = int | tuple[int, int]
Resample = Callable[[Tensor, tuple[int, ...]], Tensor]
QuantizeFn = Callable[[Tensor], QuantizerOutput]


def area_downsample(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Average over the cells each output position covers: (B, C, *in) -> (B, C, *size)."""
    return F.interpolate(x, size=size, mode="area")


def bicubic_upsample(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """2D bicubic (align_corners=False), VAR's and TokenFlow's upsampling of a scale's codes."""
    return F.interpolate(x, size=size, mode="bicubic")


def linear_upsample(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """1D linear interpolation over the token axis (align_corners=False), for token sets."""
    return F.interpolate(x, size=size, mode="linear")


def scale_size(scale: Scale, spatial_dims: int) -> tuple[int, ...]:
    """A scale as a size tuple: 2D `s` -> (s, s), `(h, w)` -> (h, w); 1D `n` -> (n,)."""
    if spatial_dims == 1:
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"a 1D scale is a positive token count, got {scale!r}")
        return (scale,)
    if spatial_dims != 2:
        raise ValueError(f"multi-scale quantization works on 1D or 2D maps, not {spatial_dims}D")
    size = (scale, scale) if isinstance(scale, int) else tuple(scale)
    if len(size) != 2 or any(not isinstance(v, int) or v < 1 for v in size):
        raise ValueError(f"a 2D scale is a side length or (height, width), got {scale!r}")
    return size


def scale_token_counts(scales: Sequence[Scale], spatial_dims: int = 2) -> list[int]:
    """Tokens per scale, e.g. (1, 2, 4) in 2D -> [1, 4, 16]."""
    return [math.prod(scale_size(s, spatial_dims)) for s in scales]


def flatten_scale_ids(ids: Sequence[Tensor]) -> Tensor:
    """Per-scale ids [(B, h, w) or (B, n), ...] -> (B, total), coarse to fine, row-major in a scale."""
    return torch.cat([i.flatten(1) for i in ids], dim=1)


def split_scale_ids(flat: Tensor, scales: Sequence[Scale], spatial_dims: int = 2, what: str = "token sequence") -> list[Tensor]:
    """Inverse of `flatten_scale_ids` for any prefix of whole scales.

    Raises a TokError naming `what` when the length is not 1, 1+4, 1+4+16, ... (a sum of whole scales).
    """
    if flat.ndim != 2:
        raise TokError(f"{what}: expected ids of shape (batch, length), got {tuple(flat.shape)}")
    counts = scale_token_counts(scales, spatial_dims)
    prefix_sums = list(itertools.accumulate(counts))
    total = flat.shape[1]
    if total not in prefix_sums:
        raise TokError(f"{what}: length {total} is not a sum of whole scales (allowed lengths: {', '.join(map(str, prefix_sums))})")
    num_scales = prefix_sums.index(total) + 1
    pieces = flat.split(counts[:num_scales], dim=1)
    return [p.reshape(flat.shape[0], *scale_size(s, spatial_dims)) for p, s in zip(pieces, scales)]


@dataclass
class MultiScaleOutput:
    """Result of multi-scale residual quantization.

    z_q: (B, C, *full) sum of the upsampled (and phi-refined) codes of every used scale, with the
        gradient path the per-scale quantizer gives (straight-through for VQ).
    ids: one int64 tensor per used scale, (B, h, w) for 2D maps or (B, n) for token sets.
    loss: mean over the used scales of the per-scale quantizer losses.
    parts: the same mean for each named loss part the per-scale quantizer reports.
    scales: the scales actually used, coarse to fine (one fewer than configured when a random
        scale drop happened in training).
    """

    z_q: Tensor
    ids: list[Tensor]
    loss: Tensor
    parts: dict[str, Tensor]
    scales: tuple[Scale, ...]


def _per_scale(item, k: int):
    return item[k] if isinstance(item, (list, tuple, nn.ModuleList)) else item


def _to_channel_last(x: Tensor) -> Tensor:
    return x.movedim(1, -1)


def _to_channel_first(x: Tensor) -> Tensor:
    return x.movedim(-1, 1)


def _pick_scales(num_scales: int, drop_prob: float, num_drop: int, generator: torch.Generator | None) -> list[int]:
    """Indices of the scales to run: all of them, or (with probability `drop_prob`) all but
    `num_drop` random ones; the first (coarsest) scale is never dropped, as in TokenFlow."""
    keep = list(range(num_scales))
    if drop_prob <= 0 or num_scales < 2:
        return keep
    if num_drop >= num_scales - 1:
        raise ValueError(f"cannot drop {num_drop} of {num_scales} scales (the first is always kept and one more must stay)")
    if float(torch.rand((), generator=generator)) >= drop_prob:
        return keep
    dropped = set((torch.randperm(num_scales - 1, generator=generator)[:num_drop] + 1).tolist())
    return [k for k in keep if k not in dropped]


def multi_scale_residual_quantize(
    z: Tensor,
    scales: Sequence[Scale],
    quantize: QuantizeFn | Sequence[QuantizeFn],
    *,
    spatial_dims: int = 2,
    down: Resample = area_downsample,
    up: Resample | None = None,
    phi: Callable[[Tensor, int], Tensor] | None = None,
    scale_drop_prob: float = 0.0,
    num_drop: int = 1,
    generator: torch.Generator | None = None,
) -> MultiScaleOutput:
    """VAR-style multi-scale residual quantization (Tian et al., arXiv 2404.02905) of `z`.

    The functional core of `MultiScaleResidualQuantizer`, for models whose checkpoint layout puts
    the per-scale quantizer elsewhere (TokenFlow's `quantize.*`). Arguments as in that class;
    `quantize` is called channel-last and `scale_drop_prob` applies whenever it is > 0 (pass 0
    in eval mode).
    """
    if z.ndim != 2 + spatial_dims:
        raise ValueError(f"expected a (B, C, {'H, W' if spatial_dims == 2 else 'N'}) input, got {tuple(z.shape)}")
    full = tuple(z.shape[2:])
    sizes = [scale_size(s, spatial_dims) for s in scales]
    for size in sizes:
        if any(a > b for a, b in zip(size, full)):
            raise ValueError(f"scale {size} is larger than the input map {full}")
    up = up or (bicubic_upsample if spatial_dims == 2 else linear_upsample)

    residual = z
    z_q = torch.zeros_like(z)
    ids, losses, parts = [], [], {}
    used = _pick_scales(len(sizes), scale_drop_prob, num_drop, generator)
    for k in used:
        size = sizes[k]
        r_k = down(residual, size) if size != full else residual
        out = _per_scale(quantize, k)(_to_channel_last(r_k))
        codes = _to_channel_first(out.z_q)
        # Upsampling to the full size is the identity; skipping it keeps the last scale exact.
        codes = up(codes, full) if size != full else codes
        if phi is not None:
            codes = phi(codes, k)
        z_q = z_q + codes
        # Detached: each scale sees the residual as a constant target, so gradients reach z
        # through the per-scale quantizer's straight-through path only.
        residual = residual - codes.detach()
        ids.append(out.ids)
        losses.append(out.loss)
        for name, value in out.parts.items():
            parts.setdefault(name, []).append(value)
    loss = torch.stack(losses).mean() if losses else z.new_zeros(())
    return MultiScaleOutput(
        z_q=z_q,
        ids=ids,
        loss=loss,
        parts={name: torch.stack(v).mean() for name, v in parts.items()},
        scales=tuple(scales[k] for k in used),
    )


def cumulative_codes(
    ids: Sequence[Tensor],
    scales: Sequence[Scale],
    lookup: Callable[[Tensor], Tensor] | Sequence[Callable[[Tensor], Tensor]],
    full: tuple[int, ...],
    spatial_dims: int = 2,
    up: Resample | None = None,
    phi: Callable[[Tensor, int], Tensor] | None = None,
):
    """Yield the running sum f_hat (B, C, *full) after each scale of a prefix of `ids`.

    `lookup(ids_k)` returns channel-last codes (a `Quantizer.ids_to_codes`); `up` defaults to
    bicubic (2D) / linear (1D). Shapes are checked first (TokError naming the scale).
    """
    up = up or (bicubic_upsample if spatial_dims == 2 else linear_upsample)
    if len(ids) > len(scales):
        raise TokError(f"got ids for {len(ids)} scales, but the model has {len(scales)}")
    sizes = [scale_size(s, spatial_dims) for s in scales]
    for k, idx in enumerate(ids):  # all shapes first: no lookups for a malformed request
        if tuple(idx.shape[1:]) != sizes[k]:
            raise TokError(f"ids of scale {k} have shape {tuple(idx.shape[1:])}, expected {sizes[k]}")
    f_hat = None
    for k, idx in enumerate(ids):
        size = sizes[k]
        codes = _to_channel_first(_per_scale(lookup, k)(idx))
        codes = up(codes, full) if size != full else codes
        if phi is not None:
            codes = phi(codes, k)
        f_hat = codes if f_hat is None else f_hat + codes
        yield f_hat


class MultiScaleResidualQuantizer(nn.Module):
    """VAR-style multi-scale residual quantization (Tian et al., arXiv 2404.02905).

    For each scale k, coarse to fine:

        r_k   = down(residual, size_k)                 # area average by default
        q_k   = quantizer_k(r_k)                       # ids_k, codes, loss_k
        c_k   = phi(up(q_k, full), k)                  # bicubic (2D) / linear (1D), optional refinement
        z_q  += c_k;  residual -= c_k.detach()

    Works on 2D maps (B, C, H, W) with scales given as side lengths `s` (an s x s map) or
    `(h, w)` pairs, and on 1D token sets (B, C, N) with scales given as token counts
    (`spatial_dims=1`). The last scale is normally the full size; upsampling to the full size is
    skipped (it is the identity).

    Args:
        quantizer: the per-scale quantizer, a `Quantizer` (channel-last `forward(z) ->
            QuantizerOutput`, `ids_to_codes(ids)`), shared by all scales; or a sequence with one
            quantizer per scale.
        scales: side lengths (2D) or token counts (1D), coarse to fine.
        spatial_dims: 2 for feature maps, 1 for token sets.
        full_size: size of the input map; defaults to the last scale.
        down, up: resampling operators `(x: (B, C, *in), size: tuple) -> (B, C, *size)`;
            defaults: area average down, bicubic (2D) or linear (1D) up.
        phi: optional refinement `phi(codes: (B, C, *full), k: int) -> same shape` applied to the
            upsampled codes of scale k before accumulation (VAR's and VAT's phi convolutions; off in
            TokenFlow). An nn.Module is registered (its parameters train and save).
        scale_drop_prob: in training, with this probability skip `num_drop` random scales other
            than the first (TokenFlow: 0.1, one scale). Never in eval mode.

    forward(z) -> `MultiScaleOutput` (z_q, per-scale ids, mean loss, parts, scales used).
    ids_to_codes(ids) -> z_q from the ids of any prefix of whole scales (coarse-only decodes);
        in eval mode it equals forward's z_q for the same scales.
    next_scale_inputs(ids) -> teacher-forcing inputs of a next-scale AR model: for k = 1..K-1
        the running sum after scales < k, area-downsampled to scale k.
    `flatten_scale_ids` / `split_scale_ids` convert between per-scale ids and one sequence.
    """

    def __init__(
        self,
        quantizer: Quantizer | Sequence[Quantizer],
        scales: Sequence[Scale],
        *,
        spatial_dims: int = 2,
        full_size: Scale | None = None,
        down: Resample = area_downsample,
        up: Resample | None = None,
        phi: Callable[[Tensor, int], Tensor] | None = None,
        scale_drop_prob: float = 0.0,
        num_drop: int = 1,
    ):
        super().__init__()
        if not scales:
            raise ValueError("need at least one scale")
        self.scales = tuple(scales)
        self.spatial_dims = spatial_dims
        self.sizes = [scale_size(s, spatial_dims) for s in self.scales]
        self.full_size = scale_size(full_size if full_size is not None else self.scales[-1], spatial_dims)
        if isinstance(quantizer, nn.Module) and not isinstance(quantizer, nn.ModuleList):
            self.quantizer = quantizer
        else:
            if len(quantizer) != len(self.scales):
                raise ValueError(f"got {len(quantizer)} per-scale quantizers for {len(self.scales)} scales")
            self.quantizer = nn.ModuleList(quantizer)
        self.down = down
        self.up = up or (bicubic_upsample if spatial_dims == 2 else linear_upsample)
        self.phi = phi
        self.scale_drop_prob = float(scale_drop_prob)
        self.num_drop = num_drop

    @property
    def vocab_size(self) -> int:
        qs = self.quantizer if isinstance(self.quantizer, nn.ModuleList) else [self.quantizer]
        return max(int(q.vocab_size) for q in qs)

    @property
    def token_counts(self) -> list[int]:
        return scale_token_counts(self.scales, self.spatial_dims)

    def forward(self, z: Tensor, generator: torch.Generator | None = None) -> MultiScaleOutput:
        if tuple(z.shape[2:]) != self.full_size:
            raise ValueError(f"expected an input map of size {self.full_size}, got {tuple(z.shape)}")
        return multi_scale_residual_quantize(
            z,
            self.scales,
            self.quantizer,
            spatial_dims=self.spatial_dims,
            down=self.down,
            up=self.up,
            phi=self.phi,
            scale_drop_prob=self.scale_drop_prob if self.training else 0.0,
            num_drop=self.num_drop,
            generator=generator,
        )

    def _lookups(self):
        if isinstance(self.quantizer, nn.ModuleList):
            return [q.ids_to_codes for q in self.quantizer]
        return self.quantizer.ids_to_codes

    def ids_to_codes(self, ids: Sequence[Tensor]) -> Tensor:
        """Sum of the codes of a prefix of whole scales, (B, C, *full_size)."""
        if not ids:
            raise TokError("need the ids of at least one scale")
        *_, f_hat = cumulative_codes(ids, self.scales, self._lookups(), self.full_size, self.spatial_dims, self.up, self.phi)
        return f_hat

    def next_scale_inputs(self, ids: Sequence[Tensor]) -> list[Tensor]:
        """For k = 1..len(ids)-1: the running sum after scales < k, area-downsampled to scale k."""
        sums = cumulative_codes(ids, self.scales, self._lookups(), self.full_size, self.spatial_dims, self.up, self.phi)
        return [self.down(f_hat, self.sizes[k + 1]) for k, f_hat in zip(range(len(ids) - 1), sums)]


def check_ids(ids: Tensor, vocab_size: int, what: str = "ids") -> None:
    """Raise a TokError when ids fall outside [0, vocab_size)."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise TokError(f"{what} must lie in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
