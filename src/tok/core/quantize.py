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

from dataclasses import dataclass

import torch
from einops import pack, rearrange, unpack
from torch import Tensor, nn

from .errors import TokError


@dataclass
class QuantizerOutput:
    """z_q: quantized latents, same shape as the input; ids: int64; loss: scalar auxiliary loss."""

    z_q: Tensor
    ids: Tensor | tuple[Tensor, ...]
    loss: Tensor


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

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        flat, packed_shape = pack([z], "b * d")
        z_q, ids, losses = self.rvq(flat)  # ids (B, N, Q)
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


def check_ids(ids: Tensor, vocab_size: int, what: str = "ids") -> None:
    """Raise a TokError when ids fall outside [0, vocab_size)."""
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise TokError(f"{what} must lie in [0, {vocab_size}), got [{int(ids.min())}, {int(ids.max())}]")
