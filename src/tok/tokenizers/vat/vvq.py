"""Variational vector quantization (VVQ): VAR's multi-scale residual VQ on VAT's 1D latent.

The algorithm is the shared `tok.core.quantize.MultiScaleResidualQuantizer` with
`spatial_dims=1`: for scale k with n_k = side_k^2 tokens, the residual (B, c, M) is area-averaged
over the token axis to n_k tokens, quantized against one codebook shared by every scale,
linearly interpolated back to M tokens, refined by a 1D convolution phi and accumulated. What
is VAT-specific lives here: the 1D phi convolutions, the scale schedule as token counts, and
initialising the codebook from latents of the unquantized phase-A model.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...core.quantize import MultiScaleOutput, MultiScaleResidualQuantizer, VQQuantizer
from .config import VATConfig


class Phi1d(nn.Conv1d):
    """VAR's phi on a token set: codes * (1 - ratio) + conv3(codes) * ratio."""

    def __init__(self, channels: int, ratio: float):
        super().__init__(channels, channels, kernel_size=3, padding=1)
        self.ratio = ratio

    def forward(self, codes: Tensor) -> Tensor:  # (B, C, M)
        return codes * (1 - self.ratio) + super().forward(codes) * self.ratio


class PartiallySharedPhi(nn.Module):
    """`num_phi` convolutions shared by neighbouring scales, chosen as in VAR: scale k of K uses
    the phi whose tick (evenly spaced in (0, 1)) is nearest k / (K - 1)."""

    def __init__(self, channels: int, num_phi: int, ratio: float, num_scales: int):
        super().__init__()
        self.phis = nn.ModuleList(Phi1d(channels, ratio) for _ in range(num_phi))
        # Plain Python: also works when the model is built on the meta device.
        first, last = 1 / 3 / num_phi, 1 - 1 / 3 / num_phi
        ticks = [first + (last - first) * i / max(1, num_phi - 1) for i in range(num_phi)]
        where = [k / max(1, num_scales - 1) for k in range(num_scales)]
        self.choice = [min(range(num_phi), key=lambda i: abs(ticks[i] - w)) for w in where]

    def forward(self, codes: Tensor, k: int) -> Tensor:
        return self.phis[self.choice[k]](codes)


def build_codebook_quantizer(config: VATConfig) -> VQQuantizer:
    """The per-scale VQ: nearest code (Euclidean), straight-through gradients."""
    if config.codebook_update == "grad":
        # One library term mse(code, z) with gradients to both sides (codebook + commitment).
        kwargs = {"ema_update": False, "learnable_codebook": True, "rotation_trick": False, "commitment_weight": config.commitment_weight}
    else:
        kwargs = {"decay": 0.99, "rotation_trick": False, "commitment_weight": config.commitment_weight, "threshold_ema_dead_code": 1}
    return VQQuantizer(config.latent_channels, config.codebook_size, **kwargs)


class VVQ(MultiScaleResidualQuantizer):
    """Multi-scale residual VQ over token counts `config.scale_tokens` of a (B, c, M) latent."""

    def __init__(self, config: VATConfig):
        num_scales = len(config.scale_sides)
        phi = PartiallySharedPhi(config.latent_channels, config.num_phi, config.phi_ratio, num_scales) if config.num_phi else None
        super().__init__(build_codebook_quantizer(config), config.scale_tokens, spatial_dims=1, phi=phi)

    @property
    def codebook(self) -> Tensor:
        return self.quantizer.vq.codebook  # (K, c)

    @torch.no_grad()
    def init_codebook(self, latents: Tensor, generator: torch.Generator | None = None, shuffle: bool = True) -> None:
        """Set the codebook to K random latent vectors (phase-A latents, (N, c)); with fewer
        than K vectors they repeat with a little noise. Avoids dead codes when VQ starts late.
        `shuffle=False` takes the first K vectors in order."""
        latents = latents.reshape(-1, latents.shape[-1]).float()
        size = self.vocab_size
        repeats = math.ceil(size / len(latents))
        pool = latents.repeat(repeats, 1)
        pick = torch.randperm(len(pool), generator=generator)[:size] if shuffle else torch.arange(size)
        chosen = pool[pick]
        if repeats > 1:
            chosen = chosen + 0.01 * chosen.std() * torch.randn(chosen.shape, generator=generator)
        codebook = self.quantizer.vq._codebook
        codebook.embed.data.copy_(chosen[None].to(codebook.embed))
        codebook.embed_avg.data.copy_(chosen[None].to(codebook.embed_avg))
        codebook.cluster_size.data.fill_(1.0)
        codebook.initted.data.fill_(True)

    @torch.no_grad()
    def scale_residuals(self, z: Tensor) -> list[Tensor]:
        """The vectors each scale would quantize if every earlier scale were exact: for z (B, M, c),
        one (B * n_k, c) tensor per scale (area-down of the residual left by the linear-up of the
        previous scales; phi is skipped, it is untrained before phase B)."""
        residual, out = z.transpose(1, 2).float(), []
        full = residual.shape[-1]
        for (n,) in self.sizes:
            r = self.down(residual, (n,)) if n != full else residual
            out.append(r.transpose(1, 2).reshape(-1, r.shape[1]))
            residual = residual - (self.up(r, (full,)) if n != full else r)
        return out

    @torch.no_grad()
    def init_codebook_per_scale(self, z: Tensor, generator: torch.Generator | None = None) -> None:
        """Codebook from phase-A latents z (B, M, c): an equal share of codes drawn from the
        residuals of every scale (coarse residuals are larger than fine ones, so drawing from raw
        latents alone would leave the fine scales with few usable codes)."""
        residuals = self.scale_residuals(z)
        share = [self.vocab_size // len(residuals)] * len(residuals)
        share[-1] += self.vocab_size - sum(share)
        picks = []
        for r, count in zip(residuals, share):
            index = torch.randint(len(r), (count,), generator=generator) if len(r) < count else torch.randperm(len(r), generator=generator)[:count]
            picks.append(r[index])
        self.init_codebook(torch.cat(picks), generator, shuffle=False)

    def quantize(self, z: Tensor) -> MultiScaleOutput:
        """z: (B, M, c) channel-last latent -> MultiScaleOutput with z_q (B, M, c)."""
        out = self(z.transpose(1, 2))
        out.z_q = out.z_q.transpose(1, 2)
        return out

    def ids_to_latent(self, ids: list[Tensor]) -> Tensor:
        """Ids of a prefix of whole scales -> (B, M, c), the residual sum the decoder consumes."""
        return self.ids_to_codes(ids).transpose(1, 2)
