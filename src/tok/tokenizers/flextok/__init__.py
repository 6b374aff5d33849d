"""FlexTok (arXiv 2502.13967): 1D ordered token sequences of flexible length."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, FlexTokConfig, VAEConfig, preset
from .model import FlexTok, build
from .weights import load_weights

__all__ = ["PRESETS", "FlexTok", "FlexTokConfig", "VAEConfig", "build", "load_weights", "preset"]

PAPER = "FlexTok: Resampling Images into 1D Token Sequences of Flexible Length (arXiv 2502.13967)"


def _tokens(config: FlexTokConfig) -> str:
    return f"1-{config.num_registers} tokens x {config.vocab_size} codes, 1D coarse-to-fine sequence"


def _builder(card: ModelCard) -> FlexTok:
    return FlexTok(card.config)


def _official(name: str, preset_name: str, repo: str, data: str) -> ModelCard:
    return register(
        ModelCard(
            name=name,
            family="flextok",
            modality="image",
            config=PRESETS[preset_name],
            builder=_builder,
            load_weights=load_weights,
            hf_repo=repo,
            hf_files=("model.safetensors",),
            extra_repos={"vae": "EPFL-VILAB/flextok_vae_c16"},
            tokens=_tokens(PRESETS[preset_name]),
            paper=PAPER,
            license="Apple ML Research Model license (weights)",
            description=f"official {preset_name} release trained on {data}",
        )
    )


_official("flextok-d18-d28-dfn", "d18-d28", "EPFL-VILAB/flextok_d18_d28_dfn", "DFN")
_official("flextok-d18-d28-in1k", "d18-d28", "EPFL-VILAB/flextok_d18_d28_in1k", "ImageNet-1k")
_official("flextok-d18-d18-in1k", "d18-d18", "EPFL-VILAB/flextok_d18_d18_in1k", "ImageNet-1k")
_official("flextok-d12-d12-in1k", "d12-d12", "EPFL-VILAB/flextok_d12_d12_in1k", "ImageNet-1k")
register(
    ModelCard(
        name="flextok-small",
        family="flextok",
        modality="image",
        config=PRESETS["small"],
        builder=_builder,
        load_weights=load_weights,
        bundled="flextok-small.safetensors",
        tokens=_tokens(PRESETS["small"]),
        paper=PAPER,
        license="Apache-2.0 (trained by tok on package photos)",
        description="small FlexTok with its own f8 c16 VAE, bundled, trained on CPU by this project",
    )
)
register(
    ModelCard(
        name="flextok-tiny",
        family="flextok",
        modality="image",
        config=PRESETS["tiny"],
        builder=_builder,
        load_weights=load_weights,
        tokens="1-16 tokens x 64000 codes, 64x64 images",
        paper=PAPER,
        license="Apache-2.0",
        description="test-sized architecture without released weights (pass --weights)",
    )
)
# The alias takes the largest official model that is on this machine, else the bundled one.
register_alias(
    "flextok",
    ("flextok-d18-d28-dfn", "flextok-d18-d28-in1k", "flextok-d18-d18-in1k", "flextok-d12-d12-in1k", "flextok-small"),
)
