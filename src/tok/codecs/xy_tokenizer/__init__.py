"""XY-Tokenizer (arXiv 2506.23325): 16 kHz speech, 12.5 Hz frames, 8 x 1024 residual codes, 1 kbps."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, XYTokenizerConfig, preset
from .model import XYTokenizer, build
from .weights import load_weights, official_state_dict, save_checkpoint

__all__ = ["PRESETS", "XYTokenizer", "XYTokenizerConfig", "build", "load_weights", "official_state_dict", "preset", "save_checkpoint"]

PAPER = "XY-Tokenizer: Mitigating the Semantic-Acoustic Conflict in Low-Bitrate Speech Codecs (arXiv 2506.23325)"


def _tokens(config: XYTokenizerConfig) -> str:
    return (
        f"{config.num_quantizers} codebooks x {config.codebook_size} at {config.frame_rate:g} Hz "
        f"({config.sample_rate // 1000} kHz audio, {config.bitrate:g} bps)"
    )


def _builder(card: ModelCard) -> XYTokenizer:
    return XYTokenizer(card.config)


register(
    ModelCard(
        name="xy-tokenizer-official",
        family="xy_tokenizer",
        modality="audio",
        config=PRESETS["official"],
        builder=_builder,
        load_weights=load_weights,
        hf_repo="fdugyt/XY_Tokenizer",
        hf_files=("xy_tokenizer.ckpt",),
        tokens=_tokens(PRESETS["official"]),
        paper=PAPER,
        license="see fdugyt/XY_Tokenizer (weights)",
        description="official 16 kHz release trained on Emilia",
    )
)
register(
    ModelCard(
        name="xy-tokenizer-small",
        family="xy_tokenizer",
        modality="audio",
        config=PRESETS["small"],
        builder=_builder,
        load_weights=load_weights,
        bundled="xy-tokenizer-small.safetensors",
        tokens=_tokens(PRESETS["small"]),
        paper=PAPER,
        license="Apache-2.0 (trained by tok on packaged speech recordings)",
        description="small XY-Tokenizer, bundled, trained on CPU by this project",
    )
)
register(
    ModelCard(
        name="xy-tokenizer-tiny",
        family="xy_tokenizer",
        modality="audio",
        config=PRESETS["tiny"],
        builder=_builder,
        load_weights=load_weights,
        tokens=_tokens(PRESETS["tiny"]),
        paper=PAPER,
        license="Apache-2.0",
        description="test-sized architecture without released weights (pass --weights)",
    )
)
register_alias("xy-tokenizer", ("xy-tokenizer-official", "xy-tokenizer-small"))
