"""VAT configs: the paper-scale design, the bundled small model and a test-sized one.

No official code or config exists (see ../shared/reference/models/vat.md); every value below
that the paper's abstract/project page does not confirm is a field with the fact sheet's
"Recommended faithful design" default (§10). The model docstring lists which are which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ...core import TokError

CODEBOOK_UPDATES = ("grad", "ema")


@dataclass(frozen=True)
class VATConfig:
    """VAT architecture and training-time sampling.

    Args:
        num_points: surface points (xyz + normal) the encoder sees per shape.
        fourier_frequencies: Fourier features sin/cos(2^i * pi * x), i < this, per axis.
        num_latents: M learnable latent tokens = tokens of the last scale.
        scale_sides: VVQ scale k holds side_k^2 tokens (a VAR-style size schedule; no 3D grid).
        width, head_dim: transformer width and head width (heads = width // head_dim).
        encoder_depth, decoder_depth: transformer blocks.
        latent_channels: c_z, channels of the Gaussian latent and of the codebook.
        codebook_size: one codebook shared by all scales (256 = the abstract's "int8 tokens").
        codebook_update: "grad" (codebook trained by the loss, VQ-VAE style) or "ema".
        commitment_weight: beta of the commitment term.
        num_phi, phi_ratio: VAR's partially shared refinement convolutions (kernel 3) and the
            residual mix codes * (1 - ratio) + conv(codes) * ratio; num_phi 0 turns phi off.
        variational: False drops the Gaussian (no sampling, no KL): the "Comp. yes / VVQ no" ablation.
        triplane_resolution: r, the decoder's learnable triplane tokens form three r x r grids.
        plane_channels: C, channels of the upsampled planes.
        upsample_stages: x2 stages of the triplane CNN (planes are r * 2^stages wide).
        mlp_depth, mlp_hidden: occupancy MLP on the concatenated plane features (3C).
        num_uniform_queries, num_near_queries, near_sigma: training occupancy queries per shape.
        mc_resolution: marching-cubes grid G used by `decode`.
        bound: shapes are normalised so their longest side spans [-bound, bound].
        kl_weight, vq_weight: loss weights (occupancy BCE has weight 1).
    """

    num_points: int = 4096
    fourier_frequencies: int = 8
    num_latents: int = 256
    scale_sides: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    width: int = 768
    head_dim: int = 64
    encoder_depth: int = 8
    decoder_depth: int = 12
    latent_channels: int = 32
    codebook_size: int = 4096
    codebook_update: str = "grad"
    commitment_weight: float = 0.25
    num_phi: int = 4
    phi_ratio: float = 0.5
    variational: bool = True
    triplane_resolution: int = 32
    plane_channels: int = 32
    upsample_stages: int = 3
    mlp_depth: int = 4
    mlp_hidden: int = 128
    num_uniform_queries: int = 16384
    num_near_queries: int = 16384
    near_sigma: float = 0.01
    mc_resolution: int = 256
    bound: float = 0.9
    kl_weight: float = 1e-4
    vq_weight: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "scale_sides", tuple(int(s) for s in self.scale_sides))
        if not self.scale_sides or list(self.scale_sides) != sorted(set(self.scale_sides)):
            raise TokError(f"scale_sides must be strictly increasing, got {self.scale_sides}")
        if self.scale_sides[-1] ** 2 != self.num_latents:
            raise TokError(f"the last scale ({self.scale_sides[-1]}^2 tokens) must equal num_latents ({self.num_latents})")
        if self.codebook_update not in CODEBOOK_UPDATES:
            raise TokError(f"codebook_update must be one of {CODEBOOK_UPDATES}, got {self.codebook_update!r}")
        if self.width % self.head_dim:
            raise TokError(f"width {self.width} is not a multiple of head_dim {self.head_dim}")

    @property
    def scale_tokens(self) -> tuple[int, ...]:
        return tuple(s * s for s in self.scale_sides)

    @property
    def num_tokens(self) -> int:
        return sum(self.scale_tokens)

    @property
    def plane_size(self) -> int:
        return self.triplane_resolution * 2**self.upsample_stages

    @property
    def bits_per_token(self) -> int:
        return (self.codebook_size - 1).bit_length()

    @property
    def bytes_per_shape(self) -> float:
        """Token payload with log2(codebook) bits per index, packed (header not counted)."""
        return self.num_tokens * self.bits_per_token / 8

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale_sides"] = list(self.scale_sides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VATConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TokError(f"unknown VAT config fields: {', '.join(sorted(unknown))}")
        return cls(**d)


PRESETS: dict[str, VATConfig] = {
    # Paper-scale design of the fact sheet (§10 "Sizes"): 680 tokens, last scale 256.
    "b": VATConfig(),
    # Bundled, trained on a shared CPU: 155 tokens (sides 1..8), 1024 codes (10-bit ids).
    "small": VATConfig(
        num_points=192, num_latents=64, scale_sides=(1, 2, 3, 4, 5, 6, 8), width=64, head_dim=16,
        encoder_depth=2, decoder_depth=2, latent_channels=8, codebook_size=1024, triplane_resolution=6,
        plane_channels=16, upsample_stages=2, mlp_depth=2, mlp_hidden=64, num_uniform_queries=256,
        # Its 24^2 planes have cells of 0.083: offsets much below that are noise to the model.
        num_near_queries=256, near_sigma=0.06, mc_resolution=64, kl_weight=1e-4,
    ),
    # Tests: the fact sheet's small CPU config.
    "tiny": VATConfig(
        num_points=256, num_latents=16, scale_sides=(1, 2, 3, 4), width=64, head_dim=16, encoder_depth=2,
        decoder_depth=2, latent_channels=8, codebook_size=64, triplane_resolution=4, plane_channels=8,
        upsample_stages=2, mlp_depth=2, mlp_hidden=32, num_uniform_queries=256, num_near_queries=256,
        mc_resolution=16,
    ),
}


def preset(name: str, **overrides: Any) -> VATConfig:
    if name not in PRESETS:
        raise TokError(f"unknown VAT preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
