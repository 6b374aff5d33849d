"""VAT (arXiv 2412.02202): variational multi-scale 3D shape tokens (meshes and point clouds)."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, VATConfig, preset
from .model import VAT, build, count_parameters
from .vvq import VVQ
from .weights import load_weights, save_checkpoint

__all__ = ["PRESETS", "VAT", "VVQ", "VATConfig", "build", "count_parameters", "load_weights", "preset", "save_checkpoint"]

PAPER = "3D representation in 512-Byte: Variational tokenizer is the key for autoregressive 3D generation (arXiv 2412.02202)"


def _builder(card: ModelCard) -> VAT:
    return VAT(card.config)


def _tokens(config: VATConfig) -> str:
    return (
        f"{config.num_tokens} tokens x {config.codebook_size} codes in {len(config.scale_sides)} scales "
        f"(1D groups of {', '.join(map(str, config.scale_tokens))}); {config.bytes_per_shape:g} bytes per shape"
    )


def _card(name: str, preset_name: str, description: str, bundled: str = "", license: str = "Apache-2.0") -> None:
    config = PRESETS[preset_name]
    register(
        ModelCard(
            name=name, family="vat", modality="shape", config=config, builder=_builder, load_weights=load_weights,
            bundled=bundled, tokens=_tokens(config), paper=PAPER, license=license, description=description,
        )
    )


_card("vat-b", "b", "paper-scale design of the fact sheet; no released weights (pass --weights)")
_card(
    "vat-small", "small", "small VAT, bundled, trained on CPU by this project on corpus and procedural shapes",
    bundled="vat-small.safetensors", license="Apache-2.0 (trained by tok; corpus meshes CC0/BSD/GPL-3+)",
)
_card("vat-tiny", "tiny", "test-sized architecture without released weights (pass --weights)")
register_alias("vat", ("vat-b", "vat-small"))
