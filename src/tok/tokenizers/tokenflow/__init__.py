"""TokenFlow (arXiv 2412.03069): dual-codebook multi-scale image tokenizer."""

from .config import PRESETS, TokenFlowConfig, preset
from .model import TokenFlow, TokenFlowOutput, build
from .quantizer import DualCodebookQuantizer
from .weights import load_weights, read_checkpoint

__all__ = ["PRESETS", "DualCodebookQuantizer", "TokenFlow", "TokenFlowConfig", "TokenFlowOutput", "build", "load_weights", "preset", "read_checkpoint"]

from ...core.zoo import ModelCard, register, register_alias

PAPER = "TokenFlow: Unified Image Tokenizer for Multimodal Understanding and Generation (arXiv 2412.03069)"


def _builder(card: ModelCard) -> TokenFlow:
    return TokenFlow(card.config)


def _tokens(config: TokenFlowConfig) -> str:
    sides = ",".join(map(str, config.scales))
    return f"{config.num_tokens} tokens x {config.codebook_size} codes, scales {sides} (multi-scale, shared-index dual codebook)"


register(
    ModelCard(
        name="tokenflow-b",
        family="tokenflow",
        modality="image",
        config=PRESETS["b"],
        builder=_builder,
        load_weights=load_weights,
        hf_repo="ByteFlow-AI/TokenFlow",
        hf_files=("tokenflow_clipb_32k_enhanced.pt",),
        tokens=_tokens(PRESETS["b"]),
        paper=PAPER,
        license="Apache-2.0 (official release)",
        description="official TokenFlow-B (CLIP ViT-B/16, enhanced decoder), 256 px, tokenizer of the t2i model",
    )
)
register(
    ModelCard(
        name="tokenflow-xl",
        family="tokenflow",
        modality="image",
        config=PRESETS["xl"],
        builder=_builder,
        load_weights=load_weights,
        hf_repo="ByteFlow-AI/TokenFlow",
        hf_files=("tokenflow_siglip_32k.pt",),
        tokens=_tokens(PRESETS["xl"]),
        paper=PAPER,
        license="Apache-2.0 (official release)",
        description="official TokenFlow-XL (SigLIP-SO400M), 384 px, tokenizer of the understanding model",
    )
)
register(
    ModelCard(
        name="tokenflow-small",
        family="tokenflow",
        modality="image",
        config=PRESETS["small"],
        builder=_builder,
        load_weights=load_weights,
        bundled="tokenflow-small.safetensors",
        tokens=_tokens(PRESETS["small"]),
        paper=PAPER,
        license="Apache-2.0 (trained by tok on package photos)",
        description="small TokenFlow (64 px, 1024 codes), bundled, trained on CPU by this project",
    )
)
register_alias("tokenflow", ("tokenflow-b", "tokenflow-small"))
