"""WavTokenizer (arXiv 2408.16532): one 4096-entry codebook for 24 kHz audio, 40 or 75 tokens/s."""

from ...core.zoo import ModelCard, register, register_alias
from .config import PRESETS, WavTokenizerConfig, preset
from .model import WavTokenizer, build
from .weights import from_official, load_weights, to_official

__all__ = ["PRESETS", "WavTokenizer", "WavTokenizerConfig", "build", "from_official", "load_weights", "preset", "to_official"]

PAPER = "WavTokenizer: an Efficient Acoustic Discrete Codec Tokenizer for Audio Language Modeling (arXiv 2408.16532)"


def _tokens(config: WavTokenizerConfig) -> str:
    return (
        f"{config.tokens_per_second:g} tokens/s x 1 codebook of {config.codebook_size} "
        f"({config.bitrate / 1000:g} kbps, {config.sample_rate // 1000} kHz)"
    )


def _builder(card: ModelCard) -> WavTokenizer:
    return WavTokenizer(card.config)


def _official(name: str, preset_name: str, repo: str, filename: str, data: str) -> None:
    config = PRESETS[preset_name]
    register(
        ModelCard(
            name=name, family="wavtokenizer", modality="audio", config=config, builder=_builder,
            load_weights=load_weights, hf_repo=repo, hf_files=(filename,), tokens=_tokens(config), paper=PAPER,
            license="MIT (code); weights as released by the authors", description=f"official release trained on {data}",
        )
    )


# File names: ../shared/reference/models/wavtokenizer.md §4.1.
_official("wavtokenizer-large-320-24k-4096", "75", "novateur/WavTokenizer-large-speech-75token", "wavtokenizer_large_speech_320_v2.ckpt", "~80k h of speech")
_official("wavtokenizer-medium-320-24k-4096", "75", "novateur/WavTokenizer-medium-speech-75token", "wavtokenizer_medium_speech_320_24k_v2.ckpt", "~10k h of speech")
_official("wavtokenizer-small-320-24k-4096", "75", "novateur/WavTokenizer", "WavTokenizer_small_320_24k_4096.ckpt", "LibriTTS")
_official("wavtokenizer-large-600-24k-4096", "40", "novateur/WavTokenizer-large-unify-40token", "wavtokenizer_large_unify_600_24k.ckpt", "~80k h of speech, audio and music")
_official("wavtokenizer-small-600-24k-4096", "40", "novateur/WavTokenizer", "WavTokenizer_small_600_24k_4096.ckpt", "LibriTTS")
register(
    ModelCard(
        name="wavtokenizer-small", family="wavtokenizer", modality="audio", config=PRESETS["small"], builder=_builder,
        load_weights=load_weights, bundled="wavtokenizer-small.safetensors", tokens=_tokens(PRESETS["small"]), paper=PAPER,
        license="Apache-2.0 (trained by tok on Debian-packaged speech)",
        description="small WavTokenizer (75 tokens/s), bundled, trained on CPU by this project",
    )
)
register(
    ModelCard(
        name="wavtokenizer-tiny", family="wavtokenizer", modality="audio", config=PRESETS["tiny"], builder=_builder,
        load_weights=load_weights, tokens=_tokens(PRESETS["tiny"]), paper=PAPER, license="Apache-2.0",
        description="test-sized architecture without released weights (pass --weights)",
    )
)
register_alias(
    "wavtokenizer",
    (
        "wavtokenizer-large-320-24k-4096", "wavtokenizer-medium-320-24k-4096", "wavtokenizer-small-320-24k-4096",
        "wavtokenizer-large-600-24k-4096", "wavtokenizer-small-600-24k-4096", "wavtokenizer-small",
    ),
)
