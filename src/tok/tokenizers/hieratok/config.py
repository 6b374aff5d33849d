"""HieraTok configs. No official config exists (no code or weights were released); the sizes
of `hieratok-b` follow the fact sheet's paper-scale choice (encoder = ViT-B 768/12, decoder
1024/24, the sizes of the same group's MingTok), everything else is a field with the fact
sheet's default so it can be changed if the paper body becomes readable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ...core import TokError

BOTTLENECKS = ("fsq", "kl")
MASKS = ("scale_causal", "full")
POSITION_EMBEDDINGS = ("sincos", "learned")


@dataclass(frozen=True)
class HieraTokConfig:
    """HieraTok architecture; [C] confirmed by the paper's abstract, [E]/[O] our choices.

    Args:
        image_size, patch_size: square input side and ViT patch side; the finest token map is
            (image_size / patch_size) squared. [O] 256 / 16.
        scales: sides of the token maps, coarse to fine; each divides the finest side and the
            last one is the finest map itself. (finest,) is the single-scale baseline.
            [C: several scales from one map; O: the list 1, 2, 4, 8, 16]
        encoder_dim, encoder_depth, decoder_dim, decoder_depth: ViT trunk sizes. [O]
        head_dim: attention head width (heads = dim / head_dim). [O]
        mlp_ratio: SwiGLU hidden width = int(2 * mlp_ratio * dim / 3) (a GELU MLP of ratio
            mlp_ratio has the same parameter count). [O]
        bottleneck: "fsq" (discrete, this toolkit's default) or "kl" (continuous diagonal
            Gaussian, what the paper most likely used). [E]
        fsq_levels: FSQ levels per latent channel (vocab = product). [O]
        kl_channels: latent channels of the KL variant. [E: MingTok uses 32]
        mask: "scale_causal" (a token of scale s attends scales <= s, bidirectional inside a
            scale) or "full" (ablation). [C: the mask; E: bidirectional inside a scale]
        refiner_depth: extra encoder blocks run on the multi-scale sequence before the
            bottleneck, with the same mask (0: the mask acts in the decoder only). [O]
        position_embedding: "sincos" (fixed 2D sin-cos at each scale's own resolution) or
            "learned". A learned per-scale embedding is always added. [O]
        prefix_dropout: training only; the probability that a sample's scales after a random
            K are replaced by the K-th scale's latents upsampled (what decoding a K-scale
            prefix feeds the decoder), so coarse prefixes decode to sensible images. [O]
    """

    image_size: int = 256
    patch_size: int = 16
    scales: tuple[int, ...] = (1, 2, 4, 8, 16)
    encoder_dim: int = 768
    encoder_depth: int = 12
    decoder_dim: int = 1024
    decoder_depth: int = 24
    head_dim: int = 64
    mlp_ratio: float = 4.0
    bottleneck: str = "fsq"
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    kl_channels: int = 32
    mask: str = "scale_causal"
    refiner_depth: int = 0
    position_embedding: str = "sincos"
    prefix_dropout: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        object.__setattr__(self, "fsq_levels", tuple(int(v) for v in self.fsq_levels))
        if self.patch_size < 1 or self.image_size % self.patch_size:
            raise TokError(f"image size {self.image_size} is not a multiple of the patch size {self.patch_size}")
        grid = self.grid_size
        if not self.scales:
            raise TokError("the scale list is empty")
        if any(s < 1 for s in self.scales) or list(self.scales) != sorted(set(self.scales)):
            raise TokError(f"scales must be positive and strictly increasing, got {list(self.scales)}")
        bad = [s for s in self.scales if grid % s]
        if bad:
            raise TokError(
                f"scale {bad[0]} does not divide the finest {grid}x{grid} token map "
                f"(image {self.image_size} / patch {self.patch_size}); scales must divide {grid}"
            )
        if self.scales[-1] != grid:
            raise TokError(f"the last scale must be the finest map {grid}, got {self.scales[-1]} (pixels are read from the finest scale)")
        for name, value, choices in (
            ("bottleneck", self.bottleneck, BOTTLENECKS),
            ("mask", self.mask, MASKS),
            ("position_embedding", self.position_embedding, POSITION_EMBEDDINGS),
        ):
            if value not in choices:
                raise TokError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        for name in ("encoder_dim", "decoder_dim"):
            if getattr(self, name) % self.head_dim:
                raise TokError(f"{name} {getattr(self, name)} is not a multiple of head_dim {self.head_dim}")
        if not 0.0 <= self.prefix_dropout <= 1.0:
            raise TokError(f"prefix_dropout must lie in [0, 1], got {self.prefix_dropout}")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def scale_lengths(self) -> tuple[int, ...]:
        """Tokens per scale, coarse to fine."""
        return tuple(s * s for s in self.scales)

    @property
    def num_tokens(self) -> int:
        return sum(self.scale_lengths)

    @property
    def latent_channels(self) -> int:
        return len(self.fsq_levels) if self.bottleneck == "fsq" else self.kl_channels

    def scale_slices(self) -> list[slice]:
        """Index range of each scale in the coarse-to-fine sequence."""
        out, start = [], 0
        for n in self.scale_lengths:
            out.append(slice(start, start + n))
            start += n
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HieraTokConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise TokError(f"unknown HieraTok config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


PRESETS: dict[str, HieraTokConfig] = {
    # Paper-scale sizes (fact sheet section 9): ~85 M encoder + ~302 M decoder parameters,
    # 1 + 4 + 16 + 64 + 256 = 341 tokens per 256x256 image. Random weights only.
    "b": HieraTokConfig(),
    # Bundled: trained on two CPU cores and stored in <= 3.5 MB (fp16): 64x64 images,
    # 8x8 finest map, scales 1, 2, 4, 8 = 85 tokens.
    "small": HieraTokConfig(
        image_size=64, patch_size=8, scales=(1, 2, 4, 8), encoder_dim=128, encoder_depth=4,
        decoder_dim=128, decoder_depth=4, head_dim=32, prefix_dropout=0.25,
    ),
    # Test-sized (fact sheet's CPU config): 32x32 images, 4x4 finest map, 21 tokens.
    "tiny": HieraTokConfig(
        image_size=32, patch_size=8, scales=(1, 2, 4), encoder_dim=64, encoder_depth=2,
        decoder_dim=64, decoder_depth=2, head_dim=32, mlp_ratio=2.0, kl_channels=4,
    ),
}


def preset(name: str, **overrides: Any) -> HieraTokConfig:
    if name not in PRESETS:
        raise TokError(f"unknown HieraTok preset {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
