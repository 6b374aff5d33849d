"""TokenFlow configs: the two released tokenizers and a small preset trained by this project.

There is no official config file: the official code picks the architecture from constructor
arguments (`teacher`, `enhanced_decoder`, `infer_interpolate`); the presets below spell those
choices out (fact sheet: reference/models/tokenflow.md, sections 2-4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenFlowConfig:
    """Architecture of one TokenFlow model.

    Args:
        teacher: official teacher name ("clipb_224", "siglip_384") or "small"; it fixes the kind of
            semantic encoder (CLIP tower for clipb_224 and small, SigLIP for siglip_384), its input
            normalisation and the checkpoint variant check.
        image_size: input resolution (256 for B with `infer_interpolate`, 384 for XL).
        scales: side lengths of the square token maps, coarse to fine; the last equals the grid.
        pixel_size: resolution the pixel CNN works at (XL: 16 * 27 = 432, resized from/to 384).
        codebook_size, semantic_code_dim, pixel_code_dim: the shared-index dual codebook.
        ch, ch_mult, num_res_blocks, z_channels: pixel encoder; decoder_ch / decoder_res_blocks for
            the pixel decoder ("enhanced" = 256 / 4, normal = 128 / 2).
        semantic_width, semantic_layers, semantic_heads, semantic_patch: the semantic encoder tower;
            semantic_mlp: SigLIP MLP width; semantic_image_size: size its position embeddings were
            made for (B: 224, interpolated at run time for 256).
        decoder_depth, decoder_heads, decoder_grid: the semantic ViT decoder (pos-emb grid:
            B 224/16 = 14, interpolated to 16 at run time; XL 432/16 = 27).
        semantic_out_dim: width of the decoded semantic features (the teacher's: 512 CLIP, 1152 SigLIP).
        beta, entropy_loss_ratio: VQ loss weights; scale_drop_prob: random scale drop in training.
        usage_size: length of the `codebook_used` buffer (131072 in the official checkpoints).
    """

    teacher: str
    image_size: int
    scales: tuple[int, ...]
    pixel_size: int
    codebook_size: int = 32768
    semantic_code_dim: int = 32
    pixel_code_dim: int = 8
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    decoder_ch: int = 128
    decoder_res_blocks: int = 2
    semantic_width: int = 768
    semantic_layers: int = 12
    semantic_heads: int = 12
    semantic_patch: int = 16
    semantic_mlp: int = 3072
    semantic_image_size: int = 224
    decoder_depth: int = 3
    decoder_heads: int = 12
    decoder_grid: int = 14
    semantic_out_dim: int = 512
    beta: float = 0.25
    entropy_loss_ratio: float = 0.0
    scale_drop_prob: float = 0.1
    usage_size: int = 131072

    @property
    def grid(self) -> int:
        return self.scales[-1]

    @property
    def code_dim(self) -> int:
        return self.semantic_code_dim + self.pixel_code_dim

    @property
    def num_tokens(self) -> int:
        return sum(s * s for s in self.scales)

    @property
    def semantic_encoder_kind(self) -> str:
        return "siglip" if self.teacher == "siglip_384" else "clip"

    def __post_init__(self):
        if self.teacher not in ("clipb_224", "siglip_384", "small"):
            raise ValueError(f"unknown TokenFlow teacher {self.teacher!r}")
        downsample = 2 ** (len(self.ch_mult) - 1)
        if self.pixel_size // downsample != self.grid:
            raise ValueError(f"pixel branch grid {self.pixel_size}/{downsample} != final scale {self.grid}")
        if self.image_size // self.semantic_patch != self.grid:
            raise ValueError(f"semantic grid {self.image_size}/{self.semantic_patch} != final scale {self.grid}")


PRESETS: dict[str, TokenFlowConfig] = {
    # tokenflow_clipb_32k_enhanced.pt: CLIP ViT-B/16 semantic encoder (trained at 224, run at 256
    # with interpolated position embeddings: `infer_interpolate`), enhanced pixel decoder.
    "b": TokenFlowConfig(
        teacher="clipb_224",
        image_size=256,
        scales=(1, 2, 4, 6, 8, 10, 12, 14, 16),
        pixel_size=256,
        decoder_ch=256,
        decoder_res_blocks=4,
    ),
    # tokenflow_siglip_32k.pt: SigLIP-SO400M/14 at 384 (27x27 grid), normal pixel decoder
    # working at 432 px.
    "xl": TokenFlowConfig(
        teacher="siglip_384",
        image_size=384,
        scales=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 22, 27),
        pixel_size=432,
        semantic_width=1152,
        semantic_layers=27,
        semantic_heads=16,
        semantic_patch=14,
        semantic_mlp=4304,
        semantic_image_size=384,
        # The official code sizes this from 432 px (27 * 16): a 27x27 grid (730 embeddings).
        decoder_grid=27,
        semantic_out_dim=1152,
    ),
    # Ours: 64 px, f8 pixel CNN, a 2-layer CLIP-style semantic tower, 1024 codes; <= 3.5 MB in fp16.
    "small": TokenFlowConfig(
        teacher="small",
        image_size=64,
        scales=(1, 2, 3, 4, 6, 8),
        pixel_size=64,
        codebook_size=1024,
        ch=32,
        ch_mult=(1, 1, 2, 2),
        num_res_blocks=1,
        z_channels=64,
        decoder_ch=32,
        decoder_res_blocks=1,
        semantic_width=64,
        semantic_layers=2,
        semantic_heads=4,
        semantic_patch=8,
        semantic_mlp=256,
        semantic_image_size=64,
        decoder_depth=1,
        decoder_heads=4,
        decoder_grid=8,
        semantic_out_dim=64,
        usage_size=4096,
    ),
    # For tests: a few thousand parameters.
    "tiny": TokenFlowConfig(
        teacher="small",
        image_size=32,
        scales=(1, 2, 4),
        pixel_size=32,
        codebook_size=64,
        semantic_code_dim=8,
        pixel_code_dim=4,
        ch=32,
        ch_mult=(1, 1, 1, 1),
        num_res_blocks=1,
        z_channels=32,
        decoder_ch=32,
        decoder_res_blocks=0,
        semantic_width=32,
        semantic_layers=1,
        semantic_heads=2,
        semantic_patch=8,
        semantic_mlp=128,
        semantic_image_size=32,
        decoder_depth=1,
        decoder_heads=2,
        decoder_grid=4,
        semantic_out_dim=16,
        usage_size=512,
    ),
}


def preset(name: str) -> TokenFlowConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown TokenFlow preset {name!r}; known: {', '.join(PRESETS)}") from None
