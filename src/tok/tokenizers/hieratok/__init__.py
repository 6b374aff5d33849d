"""HieraTok (arXiv 2509.23736): a multi-scale ViT tokenizer, one token map per scale."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, HieraTokConfig, preset
from .model import HieraTok, build
from .weights import load_weights

__all__ = ["PRESETS", "HieraTok", "HieraTokConfig", "build", "load_weights", "preset"]

PAPER = "HieraTok: Multi-Scale Visual Tokenizer Improves Image Reconstruction and Generation (arXiv 2509.23736)"


def _builder(card: ModelCard) -> HieraTok:
    return HieraTok(card.config)


def _tokens(config: HieraTokConfig) -> str:
    scales = "+".join(f"{s}x{s}" for s in config.scales)
    return f"{config.num_tokens} tokens ({scales}) x 64000 codes, scales coarse to fine, {config.image_size}px"


def _card(name: str, preset_name: str, description: str, bundled: str = "", license: str = "Apache-2.0") -> ModelCard:
    config = PRESETS[preset_name]
    return register(
        ModelCard(
            name=name, family="hieratok", modality="image", config=config, builder=_builder,
            load_weights=load_weights, bundled=bundled, tokens=_tokens(config), paper=PAPER,
            license=license, description=description,
        )
    )


_card("hieratok-b", "b", "paper-scale architecture (our reading of the paper; no official weights exist: pass --weights)")
_card(
    "hieratok-small", "small", "small HieraTok, bundled, trained on CPU by this project on the corpus photos",
    bundled="hieratok-small.safetensors", license="Apache-2.0 (trained by tok on package photos)",
)
_card("hieratok-tiny", "tiny", "test-sized architecture without released weights (pass --weights)")
register_alias("hieratok", ("hieratok-b", "hieratok-small"))
