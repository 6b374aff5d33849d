"""OmniTokenizer (arXiv 2406.09399): one transformer tokenizer for images and videos."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, OmniTokenizerConfig, preset
from .model import OmniTokenizer
from .weights import load_weights

__all__ = ["PRESETS", "OmniTokenizer", "OmniTokenizerConfig", "load_weights", "preset"]

PAPER = "OmniTokenizer: A Joint Image-Video Tokenizer for Visual Generation (arXiv 2406.09399)"
HF_REPO = "Daniel0724/OmniTokenizer"
LICENSE = "MIT (FoundationVision/OmniTokenizer repository)"


def _builder(card: ModelCard) -> OmniTokenizer:
    tokenizer = OmniTokenizer(card.config)
    tokenizer.checkpoint_file = card.hf_files[0] if card.hf_files else ""
    return tokenizer


def _tokens(config: OmniTokenizerConfig) -> str:
    side = config.resolution // config.patch_size
    if config.use_vae:
        return f"VAE: continuous {config.codebook_dim}-channel latents, not a token model (Python API encode_latents/decode_latents)"
    frames = config.latent_frames_per_clip
    return f"{side}x{side} grid x {config.n_codes} codes per image, {frames}x{side}x{side} per {config.clip_frames}-frame clip"


_DATA = {
    "imagenet_only": "ImageNet (image-only, explicit attention path)",
    "celebahq": "CelebA-HQ (image-only)",
    "ffhq": "FFHQ (image-only)",
    "imagenet_ucf": "ImageNet + UCF-101",
    "imagenet_k600": "ImageNet + Kinetics-600 (recommended)",
    "imagenet_mit": "ImageNet + Moments in Time",
    "imagenet_sthv2": "ImageNet + Something-Something v2",
    "celebahq_ucf": "CelebA-HQ + UCF-101",
    "celebahq_k600": "CelebA-HQ + Kinetics-600",
    "ffhq_ucf": "FFHQ + UCF-101",
    "ffhq_k600": "FFHQ + Kinetics-600",
    "imagenet_ucf_vae": "ImageNet + UCF-101, KL fine-tuned VAE",
    "imagenet_k600_vae": "ImageNet + Kinetics-600, KL fine-tuned VAE",
}

for _release, _data in _DATA.items():
    register(
        ModelCard(
            name=f"omnitokenizer-{_release.replace('_', '-')}",
            family="omnitokenizer",
            modality="video",
            config=PRESETS[_release],
            builder=_builder,
            load_weights=load_weights,
            hf_repo=HF_REPO,
            hf_files=(f"{_release}.ckpt",),
            tokens=_tokens(PRESETS[_release]),
            paper=PAPER,
            license=LICENSE,
            description=f"official release {_release}.ckpt trained on {_data}; images and videos",
        )
    )

register(
    ModelCard(
        name="omnitokenizer-small",
        family="omnitokenizer",
        modality="video",
        config=PRESETS["small"],
        builder=_builder,
        load_weights=load_weights,
        bundled="omnitokenizer-small.safetensors",
        tokens=_tokens(PRESETS["small"]),
        paper=PAPER,
        license="Apache-2.0 (trained by tok on the corpus photos and videos)",
        description="small OmniTokenizer, bundled, trained on CPU by this project on photos and clips",
    )
)
register(
    ModelCard(
        name="omnitokenizer-tiny",
        family="omnitokenizer",
        modality="video",
        config=PRESETS["tiny"],
        builder=_builder,
        load_weights=load_weights,
        tokens=_tokens(PRESETS["tiny"]),
        paper=PAPER,
        license="Apache-2.0",
        description="test-sized architecture without released weights (pass --weights)",
    )
)
# The alias takes the recommended joint release when it is on this machine, else the bundle.
register_alias(
    "omnitokenizer",
    ("omnitokenizer-imagenet-k600", "omnitokenizer-imagenet-ucf", "omnitokenizer-imagenet-mit", "omnitokenizer-imagenet-sthv2", "omnitokenizer-small"),
)
