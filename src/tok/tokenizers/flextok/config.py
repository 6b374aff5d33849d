"""FlexTok configs: the four official releases and a small preset trained by this project.

Official values come from ../shared/reference/models/flextok.md (apple/ml-flextok @ 87d00cc):
width = 64 x depth with 64-wide heads, SwiGLU hidden int(2 * 4 * dim / 3), 256 registers,
FSQ [8, 8, 8, 5, 5, 5], f8 c16 VAE with block widths (128, 256, 512, 512), 2x2 latent patches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ...core import TokError


@dataclass(frozen=True)
class VAEConfig:
    """diffusers `AutoencoderKL` arguments plus how FlexTok scales its latents.

    `scaling_factor` / `shift_factor` map VAE latents to the unit-variance space the flow
    decoder works in: z_model = (z_vae - shift) * scale. `sample_posterior=False` encodes with the
    posterior mode so tokenization is deterministic.
    """

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 16
    norm_num_groups: int = 32
    mid_block_add_attention: bool = True
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    sample_posterior: bool = False

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class FlexTokConfig:
    """FlexTok architecture.

    Args:
        image_size: square input resolution in pixels.
        vae: the stage-0 VAE.
        patch_size: latent patch side (2 -> 16x16 patches for a 32x32 latent).
        num_registers: register tokens = maximum tokens per image.
        fsq_levels: FSQ levels; vocab = prod(levels).
        encoder_depth, encoder_dim, decoder_depth, decoder_dim: trunk sizes.
        head_dim: attention head width (heads = dim // head_dim).
        time_frequency_dim, max_timestep: time embedder (t in [0, max_timestep]).
        nested_dropout_mode: how training samples the kept prefix length: "uniform" over 1..N,
            or "pow2" over powers of two.
        cfg_dropout_prob: probability of replacing all registers by the null condition in training.
        time_shift: training times t ~ sigmoid(N(0, 1)) are shifted towards noise by
            t <- s t / (1 + (s - 1) t) (SD3's resolution shift); 1.0 is FlexTok's plain logit-normal.
        decode_steps, decode_guidance: defaults of `decode`.
    """

    image_size: int = 256
    vae: VAEConfig = field(default_factory=VAEConfig)
    patch_size: int = 2
    num_registers: int = 256
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    encoder_depth: int = 12
    encoder_dim: int = 768
    decoder_depth: int = 12
    decoder_dim: int = 768
    head_dim: int = 64
    time_frequency_dim: int = 256
    max_timestep: float = 1.0
    nested_dropout_mode: str = "uniform"
    cfg_dropout_prob: float = 0.1
    time_shift: float = 1.0
    decode_steps: int = 25
    decode_guidance: float = 1.0

    def __post_init__(self):
        if isinstance(self.vae, dict):
            object.__setattr__(self, "vae", VAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.vae.items()}))
        object.__setattr__(self, "fsq_levels", tuple(self.fsq_levels))
        if self.latent_size % self.patch_size:
            raise ValueError(f"latent side {self.latent_size} is not a multiple of the patch size {self.patch_size}")
        if self.nested_dropout_mode not in ("uniform", "pow2"):
            raise ValueError(f"nested_dropout_mode must be 'uniform' or 'pow2', got {self.nested_dropout_mode!r}")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae.downsample

    @property
    def grid_size(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def patch_dim(self) -> int:
        return self.patch_size**2 * self.vae.latent_channels

    @property
    def vocab_size(self) -> int:
        size = 1
        for level in self.fsq_levels:
            size *= level
        return size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FlexTokConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TokError(f"unknown FlexTok config keys: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _official(encoder_depth: int, decoder_depth: int) -> FlexTokConfig:
    # Width rule 64 x depth; the VAE's scaling factor is read from its config.json at load time.
    return FlexTokConfig(
        encoder_depth=encoder_depth,
        encoder_dim=64 * encoder_depth,
        decoder_depth=decoder_depth,
        decoder_dim=64 * decoder_depth,
    )


PRESETS: dict[str, FlexTokConfig] = {
    "d12-d12": _official(12, 12),
    "d18-d18": _official(18, 18),
    "d18-d28": _official(18, 28),
    # Small enough to train on two CPU cores and ship in 10 MB (fp16); the official codes
    # (FSQ 64 000) but at most 64 registers: with 256 the 128-wide trunks, trained on CPU,
    # spread over four times the tokens and lost to a bicubic thumbnail of the same bits
    # (18.4 against 20.1 dB on the held-out photos); with 64 they beat it (18.05 against 17.98).
    "small": FlexTokConfig(
        vae=VAEConfig(block_out_channels=(32, 64, 64, 64), layers_per_block=1, mid_block_add_attention=False),
        num_registers=64,
        # 2x2 patches (64 dims) fit the 128-wide trunk; 4x4 ones (256 dims) kept the sequence
        # shorter but could not carry the noise a flow decoder must give back, which capped
        # one-step decodes near 14 dB.
        patch_size=2,
        encoder_depth=4,
        encoder_dim=128,
        decoder_depth=4,
        decoder_dim=128,
        # Short CPU training: more weight on high noise, where the prediction depends on the
        # tokens alone, makes the decoder use them early (at t=1.0 it only had noise to use).
        time_shift=4.0,
        decode_steps=1,
    ),
    # For unit tests: a 64x64 image, a handful of registers.
    "tiny": FlexTokConfig(
        image_size=64,
        vae=VAEConfig(block_out_channels=(32, 32, 32, 32), layers_per_block=1, mid_block_add_attention=False),
        num_registers=16,
        encoder_depth=1,
        encoder_dim=64,
        decoder_depth=1,
        decoder_dim=64,
        decode_steps=2,
    ),
}


def preset(name: str, **overrides: Any) -> FlexTokConfig:
    if name not in PRESETS:
        raise TokError(f"unknown FlexTok preset {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
