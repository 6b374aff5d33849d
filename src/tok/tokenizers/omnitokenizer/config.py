"""OmniTokenizer configs: the 13 released checkpoints and small ones for tests and the bundle.

Values come from the official scripts (scripts/recons/*.sh at commit 701b619): every release
is a 512-wide transformer with 8x8 patches, "ttww" spatial encoder, "tttt" spatial decoder,
4 causal temporal layers each, 8x8 windows and an 8192 x 8 l2-normalised EMA codebook. They
differ in the temporal patch (2 for the image-only ones, 4 for joint image+video), the spatial
position scheme (RoPE for joint ones, continuous relative bias otherwise) and VQ vs VAE.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ATTENTION_PATHS = ("sdpa", "explicit")


@dataclass(frozen=True)
class OmniTokenizerConfig:
    """Architecture of one OmniTokenizer.

    Args:
        resolution: square side the media readers fit inputs to (any multiple of
            patch_size * window_size works in the model).
        patch_size, temporal_patch_size: first frame in patch x patch patches, the other frames in
            temporal_patch x patch x patch tubelets.
        dim, heads, dim_head, ff_mult: transformer width, heads, head width, GEGLU multiplier.
        enc_block, dec_block: spatial layers, "t" global attention (+PEG), "w" window attention.
        temporal_depth: causal temporal layers in the encoder and in the decoder.
        window_size: side of the non-overlapping attention windows, in tokens.
        spatial_pos: "rope" (2D rotary) or "rel" (continuous relative bias MLP).
        causal_in_temporal_transformer, causal_in_peg: causal temporal attention / PEG time padding.
        n_codes, codebook_dim, l2_code: codebook size, code width, l2-normalised codes.
        use_vae: Gaussian bottleneck (KL) instead of the codebook.
        attention: "sdpa" (PyTorch SDPA: no rel bias, no ALiBi, as the release code runs on
            torch >= 2.1) or "explicit" (applies the rel bias and ALiBi, as in the paper's runs).
        clip_frames: frames per clip when encoding long videos clip by clip (1 + k * temporal patch).
    """

    resolution: int = 256
    patch_size: int = 8
    temporal_patch_size: int = 4
    dim: int = 512
    heads: int = 8
    dim_head: int = 64
    ff_mult: float = 4.0
    enc_block: str = "ttww"
    dec_block: str = "tttt"
    temporal_depth: int = 4
    window_size: int = 8
    spatial_pos: str = "rope"
    causal_in_temporal_transformer: bool = True
    causal_in_peg: bool = True
    n_codes: int = 8192
    codebook_dim: int = 8
    l2_code: bool = True
    use_vae: bool = False
    attention: str = "sdpa"
    clip_frames: int = 17
    image_channels: int = 3

    def __post_init__(self):
        if self.spatial_pos not in ("rope", "rel"):
            raise ValueError(f"spatial_pos must be 'rope' or 'rel', got {self.spatial_pos!r}")
        if self.attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}")
        if set(self.enc_block + self.dec_block) - {"t", "w"}:
            raise ValueError(f"blocks may only hold 't' and 'w', got {self.enc_block!r} / {self.dec_block!r}")
        if (self.clip_frames - 1) % self.temporal_patch_size:
            raise ValueError(f"clip_frames - 1 must be a multiple of the temporal patch, got {self.clip_frames}")

    @property
    def grid_multiple(self) -> int:
        """Input sides must be multiples of this: patches, and whole windows when 'w' layers exist."""
        has_windows = "w" in self.enc_block + self.dec_block
        return self.patch_size * (self.window_size if has_windows else 1)

    @property
    def latent_frames_per_clip(self) -> int:
        return 1 + (self.clip_frames - 1) // self.temporal_patch_size


_RELEASE = OmniTokenizerConfig()
# Image-only releases: stage-1 settings (temporal patch 2, default "rel" positions).
_IMAGE_ONLY = replace(_RELEASE, temporal_patch_size=2, spatial_pos="rel")

PRESETS: dict[str, OmniTokenizerConfig] = {
    # The README says imagenet_only was trained without SDPA (its rFID needs the explicit path).
    "imagenet_only": replace(_IMAGE_ONLY, attention="explicit"),
    "celebahq": _IMAGE_ONLY,
    "ffhq": _IMAGE_ONLY,
    "imagenet_ucf": _RELEASE,
    "imagenet_k600": _RELEASE,
    "imagenet_mit": _RELEASE,
    "imagenet_sthv2": _RELEASE,
    "celebahq_ucf": _RELEASE,
    "celebahq_k600": _RELEASE,
    "ffhq_ucf": _RELEASE,
    "ffhq_k600": _RELEASE,
    "imagenet_ucf_vae": replace(_RELEASE, use_vae=True),
    "imagenet_k600_vae": replace(_RELEASE, use_vae=True),
    # Bundled model: trained on CPU by this project (images and 9-frame clips at 128 px).
    "small": OmniTokenizerConfig(
        resolution=128, dim=128, heads=4, dim_head=32, enc_block="tw", dec_block="tt", temporal_depth=1,
        n_codes=1024, clip_frames=9,
    ),
    # Test-sized: 64 px, 8x8 tokens, one window.
    "tiny": OmniTokenizerConfig(
        resolution=64, dim=64, heads=2, dim_head=32, ff_mult=2.0, enc_block="tw", dec_block="tt", temporal_depth=1,
        n_codes=64, clip_frames=9,
    ),
}


def preset(name: str) -> OmniTokenizerConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown OmniTokenizer preset {name!r}; known: {', '.join(PRESETS)}") from None
