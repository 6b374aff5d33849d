"""TokenFlow: a dual-codebook multi-scale image tokenizer.

Qu, Zhang, Liu et al., "TokenFlow: Unified Image Tokenizer for Multimodal Understanding and
Generation", arXiv 2412.03069 (CVPR 2025). Official code: ByteVisionLab/TokenFlow @ 9812da0
(tokenflow/tokenizer/vq_model.py). Attribute names follow the official `TokenFlow` module, so
the released `.pt` state dicts load key by key.

Data flow (x in [-1, 1]):
    semantic: encoder_vqkd(x) -> encode_task_layer -> (B, 32, g, g)
    pixel:    encoder(x) -> quant_conv -> (B, 8, g, g)
    h = concat (40 channels) -> multi-scale residual VQ with the shared-index dual codebook -> f_hat
    decode: f_hat[:32] -> decoder_vqkd -> decode_task_layer (semantic features, for distillation)
            f_hat[32:] -> post_quant_conv -> decoder (image)

Model quirks kept for checkpoint parity:
- B (clipb_224) feeds the CLIP tower raw [-1, 1] pixels (no CLIP normalisation; `scaling_layer`
  is None); XL maps [-1, 1] to SigLIP's mean/std 0.5 through `scaling_layer` buffers.
- B runs at 256 with the CLIP position embeddings (made for 224) interpolated at run time.
- XL's pixel CNN works at 432 = 16 * 27 px: the input is bicubic-resized up and the output back
  to 384.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ...core import Tokenizer, TokenizerOutput, TokenLayout, Tokens, TokError
from ...core.media import check_model_square, from_model_range, to_model_square
from ...core.quantize import (
    MultiScaleOutput,
    bicubic_upsample,
    cumulative_codes,
    flatten_scale_ids,
    multi_scale_residual_quantize,
    split_scale_ids,
)
from ...nn.passes import cpu_inference_in_passes
from ...nn.winograd import use_winograd
from .config import TokenFlowConfig
from .pixel import Decoder, Encoder
from .quantizer import DualCodebookQuantizer
from .semantic import CLIPVisionTower, SemanticDecoder, SiglipVisionTower


class ScalingLayer(nn.Module):
    """[-1, 1] pixels -> the semantic tower's normalisation ((x01 - shift) / scale)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("shift", torch.tensor(mean)[None, :, None, None])
        self.register_buffer("scale", torch.tensor(std)[None, :, None, None])

    def forward(self, x: Tensor) -> Tensor:
        x = ((x + 1.0) * 127.5).clamp(0, 255.0) / 255.0
        return (x - self.shift) / self.scale


def task_layer(dim_in: int, dim_out: int) -> nn.Sequential:
    """Linear -> Tanh -> Linear (keys `.0.*` and `.2.*`)."""
    layer = nn.Sequential(nn.Linear(dim_in, dim_in), nn.Tanh(), nn.Linear(dim_in, dim_out))
    for m in (layer[0], layer[2]):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    return layer


@dataclass
class TokenFlowOutput(TokenizerOutput):
    """Training output: recon (B, 3, H, W) image, semantic (B, g*g, T) decoded semantic
    features, quantized the multi-scale quantizer's output (ids, scales used)."""

    semantic: Tensor | None = None
    quantized: MultiScaleOutput | None = None


class TokenFlow(Tokenizer):
    """TokenFlow behind the common contract.

    encode: images (B, 3, S, S) in [-1, 1] -> Tokens of layout `scales`: one (B, s, s) stream per
        scale, coarse to fine (all scales, or the first `num_scales`).
    decode: Tokens with any prefix of whole scales -> images (B, 3, S, S) in [-1, 1].
    features(x): the continuous 40-channel final-scale map f_hat (what understanding models use)
        and the semantic decoder's features.
    """

    modality = "image"
    has_cpu_bf16 = True
    compile_parts = ("encoder", "encoder_vqkd", "decoder")
    winograd_encoder_parts = ("encoder",)  # opt-in (`cpu_winograd_encoder`): the pixel encoder

    def __init__(self, config: TokenFlowConfig):
        super().__init__(config)
        c = config
        self.encoder = Encoder(c.ch, c.ch_mult, c.num_res_blocks, c.z_channels)
        self.decoder = Decoder(c.decoder_ch, c.ch_mult, c.decoder_res_blocks, c.z_channels)
        # The pixel decoder is bound by its 3x3 convolutions; on CPU they run as Winograd F(4x4, 3x3)
        # (4x fewer multiply-adds, outputs within fp32 rounding). The encoder keeps the direct
        # convolution unless `cpu_winograd_encoder` is on: its features go through an argmin,
        # where rounding could change ids.
        use_winograd(self.decoder)
        self.quant_conv = nn.Conv2d(c.z_channels, c.pixel_code_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.pixel_code_dim, c.z_channels, 1)
        if c.semantic_encoder_kind == "siglip":
            self.encoder_vqkd = SiglipVisionTower(
                c.semantic_image_size, c.semantic_patch, c.semantic_width, c.semantic_layers, c.semantic_heads, c.semantic_mlp
            )
            self.scaling_layer = ScalingLayer((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        else:
            self.encoder_vqkd = CLIPVisionTower(c.semantic_image_size, c.semantic_patch, c.semantic_width, c.semantic_layers, c.semantic_heads)
            self.scaling_layer = None  # the official B model's quirk: raw [-1, 1] pixels
        self.decoder_vqkd = SemanticDecoder(c.semantic_code_dim, c.semantic_width, c.decoder_depth, c.decoder_heads, c.decoder_grid)
        self.encode_task_layer = task_layer(c.semantic_width, c.semantic_code_dim)
        self.decode_task_layer = task_layer(c.semantic_width, c.semantic_out_dim)
        self.quantize = DualCodebookQuantizer(
            c.codebook_size, c.semantic_code_dim, c.pixel_code_dim, c.beta, c.entropy_loss_ratio, usage_size=c.usage_size
        )

    @property
    def quantizer(self) -> DualCodebookQuantizer:
        return self.quantize

    # -- layout --------------------------------------------------------------------------------
    def layout_for(self, num_scales: int) -> TokenLayout:
        """Layout of the first `num_scales` scales (one (s, s) stream each)."""
        return TokenLayout(
            kind="scales",
            vocab_sizes=(self.config.codebook_size,) * num_scales,
            axes=(("h", "w"),) * num_scales,
            extra={"image_size": self.config.image_size, "scales": list(self.config.scales[:num_scales])},
        )

    @property
    def layout(self) -> TokenLayout:
        return self.layout_for(len(self.config.scales))

    def check_num_scales(self, num_scales: int | None) -> int:
        n = len(self.config.scales)
        if num_scales is None:
            return n
        if not isinstance(num_scales, int) or not 1 <= num_scales <= n:
            raise TokError(f"number of scales must be an integer in 1..{n}, got {num_scales!r}")
        return num_scales

    def allowed_token_counts(self) -> list[int]:
        return list(itertools.accumulate(s * s for s in self.config.scales))

    def check_num_tokens(self, num_tokens: int | None) -> int | None:
        """A token count must cover whole scales: 1, 1+4, 1+4+9, ... (CLI `-n`)."""
        if num_tokens is not None and num_tokens not in self.allowed_token_counts():
            allowed = ", ".join(map(str, self.allowed_token_counts()))
            raise TokError(f"number of tokens must be a sum of whole scales for {self.name!r} (one of {allowed}), got {num_tokens!r}")
        return num_tokens

    def accepts_layout(self, layout: TokenLayout) -> bool:
        """Any prefix of whole scales is a valid layout."""
        k = layout.num_streams
        return 1 <= k <= len(self.config.scales) and layout.compatible_with(self.layout_for(k))

    def layout_mismatch(self, layout: TokenLayout) -> str:
        scales = layout.extra.get("scales", "?")
        return (
            f"layout {layout.kind} with {layout.num_streams} streams (scales {scales}) is not a prefix of "
            f"{self.name!r}'s scales {list(self.config.scales)}"
        )

    # -- media ---------------------------------------------------------------------------------
    def preprocess(self, image: Tensor) -> Tensor:
        """(3, H, W) or (B, 3, H, W) in [0, 1] -> (B, 3, S, S) in [-1, 1] (shorter side to S, center crop)."""
        return to_model_square(image, self.config.image_size)

    def postprocess(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [0, 1]."""
        return from_model_range(x)

    def check_images(self, x: Tensor) -> None:
        check_model_square(x, self.config.image_size, self.name)

    # -- the two branches ------------------------------------------------------------------------
    def semantic_input(self, x: Tensor) -> Tensor:
        return self.scaling_layer(x) if self.scaling_layer is not None else x

    def encode_continuous(self, x: Tensor) -> Tensor:
        """images -> h (B, 40, g, g): semantic (32) and pixel (8) features before quantization."""
        return cpu_inference_in_passes(self._encode_continuous, self._images_per_pass(), x)

    def _encode_continuous(self, x: Tensor) -> Tensor:
        g = self.config.grid
        sem = self.encode_task_layer(self.encoder_vqkd(self.semantic_input(x)))
        sem = rearrange(sem, "b (h w) c -> b c h w", h=g, w=g)
        pixel_in = x
        if self.config.pixel_size != x.shape[-1]:
            pixel_in = F.interpolate(x, size=(self.config.pixel_size,) * 2, mode="bicubic")
        pix = self.quant_conv(self.encoder(pixel_in))
        return torch.cat([sem, pix], dim=1)

    def quantize_multiscale(self, h: Tensor, scale_drop: bool = False) -> MultiScaleOutput:
        """VAR-style residual quantization of h over `config.scales` (area down, bicubic up)."""
        return multi_scale_residual_quantize(
            h,
            self.config.scales,
            self.quantize,
            up=bicubic_upsample,
            scale_drop_prob=self.config.scale_drop_prob if scale_drop else 0.0,
        )

    def decode_semantic(self, f_hat: Tensor) -> Tensor:
        """f_hat (B, 40, g, g) -> semantic features (B, g*g, semantic_out_dim)."""
        return self.decode_task_layer(self.decoder_vqkd(f_hat[:, : self.config.semantic_code_dim]))

    def decode_pixels(self, f_hat: Tensor) -> Tensor:
        """f_hat (B, 40, g, g) -> image (B, 3, S, S), unclamped."""
        return cpu_inference_in_passes(self._decode_pixels, self._images_per_pass(), f_hat)

    def _decode_pixels(self, f_hat: Tensor) -> Tensor:
        image = self.decoder(self.post_quant_conv(f_hat[:, self.config.semantic_code_dim :]))
        if image.shape[-1] != self.config.image_size:
            image = F.interpolate(image, size=(self.config.image_size,) * 2, mode="bicubic")
        return image

    def _running_sums(self, ids: list[Tensor] | Tensor):
        if isinstance(ids, Tensor):
            ids = split_scale_ids(ids, self.config.scales, what="token ids")
        g = self.config.grid
        return cumulative_codes([i.long() for i in ids], self.config.scales, self.quantize.ids_to_codes, (g, g), up=bicubic_upsample)

    def ids_to_features(self, ids: list[Tensor] | Tensor) -> Tensor:
        """Per-scale ids (or one flat (B, L) sequence, L a sum of whole scales) -> f_hat (B, 40, g, g):
        the sum of the bicubic-upsampled codes (the official `decode_code`)."""
        *_, f_hat = self._running_sums(ids)
        return f_hat

    def next_scale_inputs(self, ids: list[Tensor] | Tensor) -> list[Tensor]:
        """Teacher-forcing inputs of the t2i next-scale model (official `VQTower.forward`): the codes
        are summed at the current scale's size and the sum is bicubic-resized to the next scale,
        giving for each scale k >= 1 a (B, 40, s_k, s_k) map."""
        if isinstance(ids, Tensor):
            ids = split_scale_ids(ids, self.config.scales, what="token ids")
        f_hat, inputs = None, []
        for k, idx in enumerate(ids[:-1]):
            codes = rearrange(self.quantize.ids_to_codes(idx.long()), "b h w c -> b c h w")
            f_hat = codes if f_hat is None else f_hat + codes
            nxt = self.config.scales[k + 1]
            f_hat = F.interpolate(f_hat, size=(nxt, nxt), mode="bicubic")
            inputs.append(f_hat)
        return inputs

    # CPU inference runs the encoder towers and the pixel decoder over at most this many pixels per
    # pass (see `tok.nn.passes`): TokenFlow-B encoded 0.42 images/s at batch 8 in one pass and 0.54
    # one image at a time; peak memory stops growing with the batch.
    cpu_pass_pixels: int = 256 * 256

    def _images_per_pass(self) -> int:
        return self.cpu_pass_pixels // self.config.pixel_size**2

    def _continuous_for_inference(self, x: Tensor) -> Tensor:
        """`encode_continuous` for the inference paths: checks the images; the towers run under the
        `cpu_bf16` switch, the multi-scale quantization that follows in fp32."""
        self.check_images(x)
        x = x.to(self.device, torch.float32)
        with self.cpu_bf16_autocast(x):
            return self.encode_continuous(x).float()

    # -- contract ------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(
        self, x: Tensor, *, num_scales: int | None = None, num_tokens: int | None = None, sources: list[dict] | None = None
    ) -> Tokens:
        """images (B, 3, S, S) in [-1, 1] -> Tokens of the first `num_scales` scales (default all),
        or of the scales that make up `num_tokens` tokens (a sum of whole scales)."""
        if num_tokens is not None:
            if num_scales is not None:
                raise TokError("give either a number of scales or a number of tokens, not both")
            num_scales = self.allowed_token_counts().index(self.check_num_tokens(num_tokens)) + 1
        k = self.check_num_scales(num_scales)
        out = self.quantize_multiscale(self._continuous_for_inference(x))
        streams = [i.contiguous() for i in out.ids[:k]]
        return self.make_tokens(streams, sources, self.layout_for(k))

    @torch.inference_mode()
    def encode_ids(self, x: Tensor) -> Tensor:
        """images -> flat ids (B, sum s^2), the official `encode` index order."""
        return flatten_scale_ids(self.quantize_multiscale(self._continuous_for_inference(x)).ids)

    @torch.inference_mode()
    def features(self, x: Tensor) -> dict[str, Tensor]:
        """images -> {"quantized": f_hat (B, 40, g, g), "continuous": h before quantization,
        "semantic": decoded semantic features (B, g*g, T)}."""
        h = self._continuous_for_inference(x)
        f_hat = self.quantize_multiscale(h).z_q
        with self.cpu_bf16_autocast(f_hat):
            semantic = self.decode_semantic(f_hat).float()
        return {"quantized": f_hat, "continuous": h, "semantic": semantic}

    @torch.inference_mode()
    def decode(self, tokens: Tokens | Tensor | list[Tensor], **opts) -> Tensor:
        """Tokens (any prefix of whole scales), per-scale ids, or flat ids -> images in [-1, 1].

        Decoding is deterministic; `seed` is accepted (and ignored) for a uniform CLI, any other
        option is an error.
        """
        unknown = sorted(k for k, v in opts.items() if v is not None and k != "seed")
        if unknown:
            raise TokError(f"TokenFlow decoding has no {', '.join(unknown)} option")
        if isinstance(tokens, Tokens):
            self.check_tokens(tokens)
            ids = [s.to(self.device) for s in tokens.streams]
        elif isinstance(tokens, Tensor):
            ids = split_scale_ids(tokens.to(self.device), self.config.scales, what="token ids")
        else:
            ids = [s.to(self.device) for s in tokens]
        for i in ids:
            if i.numel() and (int(i.min()) < 0 or int(i.max()) >= self.config.codebook_size):
                raise TokError(f"token ids must lie in [0, {self.config.codebook_size}), got [{int(i.min())}, {int(i.max())}]")
        if len(ids) > len(self.config.scales) or any(tuple(i.shape[1:]) != (s, s) for i, s in zip(ids, self.config.scales)):
            raise TokError(f"token ids of shapes {[tuple(i.shape[1:]) for i in ids]} are not a prefix of scales {list(self.config.scales)}")
        f_hat = self.ids_to_features(ids)
        with self.cpu_bf16_autocast(f_hat):
            return self.decode_pixels(f_hat).float().clamp(-1, 1)

    def forward(self, x: Tensor) -> TokenFlowOutput:
        """Training path: scale drop active in train mode; losses averaged over scales."""
        quantized = self.quantize_multiscale(self.encode_continuous(x), scale_drop=self.training)
        return TokenFlowOutput(
            recon=self.decode_pixels(quantized.z_q),
            losses=dict(quantized.parts),
            semantic=self.decode_semantic(quantized.z_q),
            quantized=quantized,
        )


def build(config: TokenFlowConfig) -> TokenFlow:
    return TokenFlow(config)
