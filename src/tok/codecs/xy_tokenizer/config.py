"""XY-Tokenizer configurations: the official 16 kHz release and small CPU-sized variants."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...core.errors import TokError


@dataclass(frozen=True)
class XYTokenizerConfig:
    """Every tower shares `dim` / `num_heads` / `ffn_dim`, as in the official configuration.

    Rates: mel at sample_rate / hop (100 Hz), towers at half that (50 Hz), codes after a further
    `downsample` (12.5 Hz), so one code frame covers hop * 2 * downsample samples (1280).
    `max_seconds` sizes the fixed sinusoidal position tables (the official 30 s: 1500 positions
    at 50 Hz, 375 at 12.5 Hz); longer audio is encoded and decoded in windows of that length.
    """

    sample_rate: int = 16000
    n_mels: int = 80
    n_fft: int = 400
    hop_length: int = 160
    max_seconds: int = 30
    dim: int = 768
    num_heads: int = 12
    ffn_dim: int = 3072
    semantic_layers: int = 12
    semantic_adapter_layers: int = 4
    acoustic_layers: int = 12
    pre_rvq_layers: int = 4
    post_rvq_layers: int = 4
    decoder_layers: int = 12
    downsample: int = 4
    rvq_dim: int = 512
    num_quantizers: int = 8
    codebook_size: int = 1024
    vocos_dim: int = 512
    vocos_intermediate_dim: int = 4096
    vocos_layers: int = 30
    vocos_n_fft: int = 640
    vocos_hop_length: int = 160
    kmeans_init: bool = True

    def __post_init__(self):
        if self.vocos_hop_length != self.hop_length:
            raise TokError(f"the vocoder hop ({self.vocos_hop_length}) must equal the mel hop ({self.hop_length}) for a 16 kHz output")
        if self.dim % self.num_heads:
            raise TokError(f"dim {self.dim} is not a multiple of {self.num_heads} heads")

    @property
    def frame_samples(self) -> int:
        """Input samples per code frame (1280 officially)."""
        return self.hop_length * 2 * self.downsample

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.frame_samples

    @property
    def tokens_per_second(self) -> float:
        return self.frame_rate * self.num_quantizers

    @property
    def bitrate(self) -> float:
        return self.tokens_per_second * (self.codebook_size - 1).bit_length()

    @property
    def positions_50hz(self) -> int:
        return self.max_seconds * self.sample_rate // self.hop_length // 2

    @property
    def window_frames(self) -> int:
        """Code frames in one window of `max_seconds` (375 officially)."""
        return self.positions_50hz // self.downsample


PRESETS: dict[str, XYTokenizerConfig] = {
    # gyt1145028706/XY-Tokenizer config/xy_tokenizer_config.yaml (16 kHz in and out).
    "official": XYTokenizerConfig(),
    # Bundled model trained on CPU by this project: the official structure at a small width.
    # The codebook width is small because the 8 x 1024 codebooks (and their EMA sums) dominate
    # a 3.5 MB fp16 file.
    "small": XYTokenizerConfig(
        max_seconds=6,
        dim=64,
        num_heads=4,
        ffn_dim=256,
        semantic_layers=1,
        semantic_adapter_layers=1,
        acoustic_layers=2,
        pre_rvq_layers=1,
        post_rvq_layers=1,
        decoder_layers=2,
        rvq_dim=16,
        vocos_dim=128,
        vocos_intermediate_dim=320,
        vocos_layers=4,
    ),
    # Test-sized.
    "tiny": XYTokenizerConfig(
        max_seconds=4,
        dim=32,
        num_heads=2,
        ffn_dim=64,
        semantic_layers=1,
        semantic_adapter_layers=1,
        acoustic_layers=1,
        pre_rvq_layers=1,
        post_rvq_layers=1,
        decoder_layers=1,
        rvq_dim=16,
        num_quantizers=8,
        codebook_size=1024,
        vocos_dim=32,
        vocos_intermediate_dim=64,
        vocos_layers=1,
    ),
}


def preset(name: str, **overrides) -> XYTokenizerConfig:
    if name not in PRESETS:
        raise TokError(f"unknown XY-Tokenizer preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
