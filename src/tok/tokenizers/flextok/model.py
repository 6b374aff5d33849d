"""FlexTok: resampling images into 1D token sequences of flexible length.

Bachmann, Allardice, Mizrahi et al., "FlexTok", arXiv 2502.13967 (ICML 2025).
Official code: apple/ml-flextok @ 87d00cc. Attribute names follow the official checkpoint
(`vae.vae.*`, `encoder.module_dict.<name>.*`, `decoder.module_dict.<name>.*`), so official
`model.safetensors` files load key by key.

Where we differ from the official code (same weights, same maths):
- Images of a batch are processed as one dense (B, L, D) batch with a boolean SDPA mask instead
  of FlexAttention over a packed sequence: every image has the same number of patches and
  registers, so packing buys nothing and the dense path batches on CPU and GPU alike.
- The VAE encodes with the posterior mode by default (deterministic tokens); set
  `VAEConfig.sample_posterior=True` for the official sampling behaviour.
- REPA (decoder-feature alignment with DINOv2-L) is a training-only loss and is not part of
  the inference graph; the trainer here does not use it (DINOv2 weights cannot be fetched offline).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ...core import TokenLayout, Tokens, TokError, Tokenizer, TokenizerOutput
from ...core.media import check_model_square, from_model_range, to_model_square
from ...core.quantize import FSQQuantizer, check_ids
from ...nn.activation import use_inference_silu
from ...nn.attention import PrefixCausal
from ...nn.embeddings import TimestepEmbedder, sincos_2d
from ...nn.norm import affine_free_layer_norm
from ...nn.transformer import AdaLNBlock, Block, modulate
from ...nn.winograd import use_winograd
from .config import FlexTokConfig, VAEConfig
from .samplers import integrate

# muP-style softmax scale of the official attention: 8 / head_dim (= 1/sqrt(64) at head_dim 64).
MUP_SCALE = 8.0


# ------------------------------------------------------------------------------------------------
# Small modules whose attribute names make up the checkpoint keys
# ------------------------------------------------------------------------------------------------
class PatchEmbedder(nn.Module):
    """(B, C, H, W) latent -> (B, (H/p)(W/p), D) via a linear map of each p x p x C patch."""

    def __init__(self, patch_size: int, channels: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.patch_proj = nn.Linear(patch_size * patch_size * channels, dim)

    def forward(self, latent: Tensor) -> Tensor:
        p = self.patch_size
        # Official patch vector order is (row-in-patch, col-in-patch, channel).
        patches = rearrange(latent, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)
        return self.patch_proj(patches)


class PositionalEmbedding2D(nn.Module):
    """Fixed sin-cos table (1, D, S, S), stored as a frozen parameter like the official module."""

    def __init__(self, dim: int, size: int):
        super().__init__()
        self.posembs = nn.Parameter(sincos_2d(size, size, dim), requires_grad=False)

    def forward(self, x: Tensor, grid: int) -> Tensor:
        table = self.posembs[:, :, :grid, :grid]  # crop ("absolute" scaling)
        return x + rearrange(table, "1 d h w -> 1 (h w) d").to(x.dtype)


class PositionalEmbedding1D(nn.Module):
    """Learned 1D table (1, 1, D, N) for the decoder's register slots.

    The official module type is unconfirmed by the fact sheet; this is the layout of the
    official `PositionalEmbedding` with `posemb_type="learnable_sum"` and one axis.
    """

    def __init__(self, dim: int, length: int):
        super().__init__()
        self.posembs = nn.Parameter(torch.randn(1, 1, dim, length) * 0.02)

    def forward(self, x: Tensor) -> Tensor:
        return x + rearrange(self.posembs[0, :, :, : x.shape[1]], "1 d n -> 1 n d").to(x.dtype)


class Registers(nn.Module):
    def __init__(self, num: int, dim: int):
        super().__init__()
        self.registers = nn.Parameter(torch.randn(num, dim) * 0.02)


class Linear(nn.Module):
    """A linear layer stored under `.proj` (official `LinearLayer`)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class LinearHead(nn.Module):
    """Affine-free LayerNorm, then linear (official `LinearHead` without adaLN)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.norm = affine_free_layer_norm(dim_in)
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.norm(x))


class AdaLNLinearHead(LinearHead):
    """LayerNorm modulated by the condition (shift, scale), then linear (`ToPatchesLinearHead`)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__(dim_in, dim_out)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 2 * dim_in))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(cond)[:, None].chunk(2, dim=-1)
        return self.proj(modulate(self.norm(x), shift, scale))


class Transformer(nn.Module):
    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class NestedDropout(nn.Module):
    """Replaces registers k..N-1 by a learned mask token: any prefix of the tokens is decodable."""

    def __init__(self, dim: int):
        super().__init__()
        self.dropout_mask_token = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, registers: Tensor, keep_k: Tensor) -> Tensor:
        """registers: (B, N, D); keep_k: (B,) number of leading registers to keep."""
        keep = torch.arange(registers.shape[1], device=registers.device)[None, :] < keep_k[:, None]
        return torch.where(keep[..., None], registers, self.dropout_mask_token.to(registers.dtype))


class LearnedNullCond(nn.Module):
    """The classifier-free-guidance null condition: every register replaced by one learned vector."""

    def __init__(self, dim: int):
        super().__init__()
        self.nullcond = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, registers: Tensor, drop: Tensor) -> Tensor:
        """drop: (B,) bool, True where the sample takes the null condition."""
        return torch.where(drop[:, None, None], self.nullcond.to(registers.dtype), registers)


def _init_linears(module: nn.Module) -> None:
    """Official init: xavier-uniform linears with zero bias; zero-init layers are re-zeroed after."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _zero_modulation(module: nn.Module) -> None:
    """AdaLN-zero: modulations and the velocity head start at zero, so the decoder starts as identity blocks."""
    for name, m in module.named_modules():
        if name.endswith("adaLN_modulation") or name.endswith("dec_to_patches.proj"):
            for p in m.parameters():
                nn.init.zeros_(p)


# ------------------------------------------------------------------------------------------------
# VAE, encoder, decoder
# ------------------------------------------------------------------------------------------------
class VAE(nn.Module):
    """Stage 0: diffusers `AutoencoderKL` (as `self.vae`, keys `vae.vae.*`) with latent scaling."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        from diffusers import AutoencoderKL

        self.config = config
        blocks = len(config.block_out_channels)
        self.vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * blocks,
            up_block_types=("UpDecoderBlock2D",) * blocks,
            block_out_channels=config.block_out_channels,
            layers_per_block=config.layers_per_block,
            latent_channels=config.latent_channels,
            norm_num_groups=config.norm_num_groups,
            mid_block_add_attention=config.mid_block_add_attention,
        )
        # The decoder's 3x3 convolutions run as Winograd F(4x4, 3x3) on CPU (outputs within fp32
        # rounding); the encoder's stay direct unless `cpu_winograd_encoder` is on, since its
        # latents are quantized.
        use_winograd(self.vae.decoder)
        # Every SiLU in diffusers' VAE follows a GroupNorm whose output nothing else reads.
        use_inference_silu(self.vae)

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """images (B, 3, H, W) in [-1, 1] -> scaled latents (B, C, H/f, W/f)."""
        posterior = self.vae.encode(images).latent_dist
        z = posterior.sample(generator) if self.config.sample_posterior else posterior.mode()
        return (z - self.config.shift_factor) * self.config.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        z = latents / self.config.scaling_factor + self.config.shift_factor
        return self.vae.decode(z).sample


class FlexTokEncoder(nn.Module):
    """Patches attend among themselves; register i attends to all patches and registers 0..i."""

    def __init__(self, config: FlexTokConfig):
        super().__init__()
        dim = config.encoder_dim
        self.config = config
        self.module_dict = nn.ModuleDict(
            {
                "enc_patch_emb": PatchEmbedder(config.patch_size, config.vae.latent_channels, dim),
                "enc_posemb_module": PositionalEmbedding2D(dim, config.grid_size),
                "enc_register_module": Registers(config.num_registers, dim),
                "enc_transformer": Transformer(
                    [Block(dim, config.head_dim, attn_scale=MUP_SCALE / config.head_dim) for _ in range(config.encoder_depth)]
                ),
                "enc_to_latents": LinearHead(dim, len(config.fsq_levels)),
            }
        )
        self.pattern = PrefixCausal(config.num_patches)  # = attention_mask(), in a form the fused kernels take

    @staticmethod
    def attention_mask(num_patches: int, num_registers: int) -> Tensor:
        """(L, L) boolean, True where query may attend key (official mask_mode `causal_last`)."""
        length = num_patches + num_registers
        mask = torch.zeros(length, length, dtype=torch.bool)
        mask[:num_patches, :num_patches] = True
        mask[num_patches:, :num_patches] = True
        mask[num_patches:, num_patches:] = torch.ones(num_registers, num_registers, dtype=torch.bool).tril()
        return mask

    def forward(self, latents: Tensor, num_registers: int | None = None) -> Tensor:
        """latents (B, C, h, w) -> register latents (B, k, len(fsq_levels)) before quantization,
        k = num_registers (default all N). Register i sees only the patches and registers 0..i,
        so the first k come out the same whether the later ones run or not: a k-token encode
        runs k of them."""
        md = self.module_dict
        patches = md["enc_posemb_module"](md["enc_patch_emb"](latents), self.config.grid_size)
        registers = md["enc_register_module"].registers[:num_registers].to(patches.dtype).expand(patches.shape[0], -1, -1)
        x = torch.cat([patches, registers], dim=1)
        for block in md["enc_transformer"].blocks:
            x = block(x, self.pattern)
        return md["enc_to_latents"](x[:, self.config.num_patches :])


def last_key_repeated(x: Tensor, repeats: int) -> Tensor | None:
    """Attention bias (1, L) (every query, per key) for x (B, L, D) whose last token stands for
    `repeats` identical ones: a key present n times has n times the softmax weight, i.e. log(n)
    added to its logit."""
    if repeats == 1:
        return None
    bias = torch.zeros(1, x.shape[1], dtype=x.dtype, device=x.device)
    bias[:, -1] = math.log(repeats)
    return bias


class FlexTokDecoder(nn.Module):
    """Rectified-flow transformer: predicts the velocity (noise - x0) of the noised latent from
    the (prefix-masked) register codes, with AdaLN-zero time conditioning per segment."""

    def __init__(self, config: FlexTokConfig):
        super().__init__()
        dim = config.decoder_dim
        self.config = config
        self.module_dict = nn.ModuleDict(
            {
                "dec_from_latents": Linear(len(config.fsq_levels), dim),
                "dec_registers_posemb_module": PositionalEmbedding1D(dim, config.num_registers),
                "dec_nested_dropout": NestedDropout(dim),
                "dec_latent_dropout": LearnedNullCond(dim),
                "dec_noise_patch_emb": PatchEmbedder(config.patch_size, config.vae.latent_channels, dim),
                "dec_patches_posemb_module": PositionalEmbedding2D(dim, config.grid_size),
                "dec_time_embedder": TimestepEmbedder(dim, config.time_frequency_dim, config.max_timestep),
                "dec_transformer": Transformer(
                    [
                        AdaLNBlock(dim, config.head_dim, attn_scale=MUP_SCALE / config.head_dim, num_segments=2)
                        for _ in range(config.decoder_depth)
                    ]
                ),
                "dec_to_patches": AdaLNLinearHead(dim, config.patch_dim),
            }
        )

    def condition(self, codes: Tensor, keep_k: Tensor, null: Tensor) -> Tensor:
        """FSQ codes (B, N, d) -> register inputs (B, N, D) with the prefix and null masks applied."""
        md = self.module_dict
        registers = md["dec_registers_posemb_module"](md["dec_from_latents"](codes))
        registers = md["dec_nested_dropout"](registers, keep_k)
        return md["dec_latent_dropout"](registers, null)

    @staticmethod
    def collapse(registers: Tensor, kept: int) -> tuple[Tensor, int]:
        """Registers (B, N, D) whose positions `kept`..N-1 hold one identical vector (the nested-
        dropout mask token, or with kept=0 the null condition) -> (registers[:, :kept + 1], N - kept).

        Identical registers stay identical through every block (the same query, the same
        segment's modulation, no position information after the input), so one of them, its key
        counted N - kept times (`forward`'s `repeats`), gives the same patch velocities with
        kept + 1 registers instead of N: the null pass of guidance runs 1 register instead of
        256, a 16-token decode 17.
        """
        if kept >= registers.shape[1]:
            return registers, 1
        return registers[:, : kept + 1], registers.shape[1] - kept

    def forward(self, noised: Tensor, t: Tensor, registers: Tensor, repeats: int = 1) -> Tensor:
        """noised (B, C, h, w), t (B,) in [0, 1], registers (B, n, D) from `condition` (or
        `collapse`d, the last one standing for `repeats` identical ones) -> velocity (B, C, h, w)."""
        md, cfg = self.module_dict, self.config
        patches = md["dec_patches_posemb_module"](md["dec_noise_patch_emb"](noised), cfg.grid_size)
        cond = md["dec_time_embedder"](t).to(patches.dtype)
        x = torch.cat([patches, registers.to(patches.dtype)], dim=1)
        lengths = (patches.shape[1], registers.shape[1])
        key_bias = last_key_repeated(x, repeats)
        for block in md["dec_transformer"].blocks:
            x = block(x, cond, lengths, key_bias)
        out = md["dec_to_patches"](x[:, : lengths[0]], cond)
        p = cfg.patch_size
        return rearrange(out, "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", h=cfg.grid_size, p1=p, p2=p)


# ------------------------------------------------------------------------------------------------
# Guidance
# ------------------------------------------------------------------------------------------------
class AdaptiveProjectedGuidance:
    """APG ("normalized guidance", arXiv 2410.02416) as FlexTok configures it: momentum -0.5,
    the guidance difference's per-sample norm clipped to 2.5, its component parallel to the
    conditional prediction removed (eta 0)."""

    def __init__(self, momentum: float = -0.5, norm_threshold: float = 2.5, eta: float = 0.0):
        self.momentum, self.norm_threshold, self.eta = momentum, norm_threshold, eta
        self.running: Tensor | None = None

    def __call__(self, cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
        diff = cond - uncond
        self.running = diff if self.running is None else diff + self.momentum * self.running
        diff = self.running
        dims = tuple(range(1, diff.ndim))
        norm = diff.norm(p=2, dim=dims, keepdim=True)
        diff = diff * torch.clamp(self.norm_threshold / norm.clamp_min(1e-12), max=1.0)
        unit = F.normalize(cond.flatten(1).double(), dim=1).view_as(cond)
        parallel = ((diff.double() * unit).sum(dim=dims, keepdim=True) * unit).to(diff.dtype)
        orthogonal = diff - parallel
        return cond + (scale - 1) * (orthogonal + self.eta * parallel)


# ------------------------------------------------------------------------------------------------
# The tokenizer
# ------------------------------------------------------------------------------------------------
class FlexTok(Tokenizer):
    """FlexTok behind the common contract.

    encode: images (B, 3, S, S) in [-1, 1] -> Tokens, one `sequence` stream (B, k), k in 1..N.
    decode: Tokens -> images (B, 3, S, S) in [-1, 1] by Euler integration of the flow from noise.
    """

    modality = "image"
    has_cpu_bf16 = True
    compile_parts = ("vae.vae.encoder", "vae.vae.decoder", "encoder", "decoder")
    # int8 in the flow decoder only: in the encoder it moved the FSQ ids (35 % equal on the bundled
    # model's val photos, PSNR -0.14 dB); the decoder alone cost 0.04 dB (README).
    int8_parts = ("decoder",)
    decode_only_parts = ("vae.vae.decoder", "decoder")
    # Opt-in (`cpu_winograd_encoder`): the VAE encoder carries 4/5 of a tokenize on CPU.
    winograd_encoder_parts = ("vae.vae.encoder",)

    def __init__(self, config: FlexTokConfig):
        super().__init__(config)
        self.vae = VAE(config.vae)
        self.encoder = FlexTokEncoder(config)
        self.quantizer = FSQQuantizer(config.fsq_levels)
        self.decoder = FlexTokDecoder(config)
        _init_linears(self.encoder)
        _init_linears(self.decoder)
        _zero_modulation(self.decoder)

    def set_latent_scaling(self, scaling_factor: float, shift_factor: float | None) -> None:
        """Set how VAE latents map to the decoder's space (read from a VAE config or measured)."""
        vae = replace(self.config.vae, scaling_factor=float(scaling_factor), shift_factor=float(shift_factor or 0.0))
        self.vae.config = vae
        self.config = replace(self.config, vae=vae)

    # -- contract --------------------------------------------------------------------------
    @property
    def layout(self) -> TokenLayout:
        return TokenLayout(
            kind="sequence",
            vocab_sizes=(self.quantizer.vocab_size,),
            axes=(("n",),),
            extra={"image_size": self.config.image_size, "max_tokens": self.config.num_registers},
        )

    def preprocess(self, image: Tensor) -> Tensor:
        """(3, H, W) or (B, 3, H, W) in [0, 1] -> (B, 3, S, S) in [-1, 1] (shorter side to S, center crop)."""
        return to_model_square(image, self.config.image_size)

    def postprocess(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [0, 1]."""
        return from_model_range(x)

    def check_images(self, x: Tensor) -> None:
        check_model_square(x, self.config.image_size, self.name)

    def check_num_tokens(self, num_tokens: int | None) -> int:
        n = self.config.num_registers
        if num_tokens is None:
            return n
        if not isinstance(num_tokens, int) or not 1 <= num_tokens <= n:
            raise TokError(f"number of tokens must be an integer in 1..{n}, got {num_tokens!r}")
        return num_tokens

    # Images per network pass in `encode` and `decode`: larger batches are split, so peak memory
    # stops growing with the batch (outputs are the same as in one pass).
    max_batch: int = 16
    # Decoding runs the identical masked registers of a k-token decode, and guidance's null
    # registers, as one register each (FlexTokDecoder.collapse); False runs all N, as the official
    # code does (same outputs up to float rounding; for A/B timing and tests).
    collapse_registers: bool = True

    def _autocast(self, x: Tensor):
        # bf16 on GPU for the transformer trunks; on CPU only with `cpu_bf16` (or an autocast
        # the caller opened, such as Accelerate's bf16 training).
        if x.device.type == "cpu":
            return self.cpu_bf16_autocast(x)
        return torch.autocast(x.device.type, dtype=torch.bfloat16)

    def encode_latents(self, latents: Tensor, num_tokens: int | None = None) -> tuple[Tensor, Tensor]:
        """Scaled VAE latents -> (FSQ codes (B, k, d), ids (B, k)), k = num_tokens (default all N)."""
        with self._autocast(latents):
            z = self.encoder(latents, num_tokens)
        out = self.quantizer(z.float())
        return out.z_q, out.ids

    @torch.inference_mode()
    def encode(self, x: Tensor, *, num_tokens: int | None = None, sources: list[dict] | None = None) -> Tokens:
        """images (B, 3, S, S) in [-1, 1] -> Tokens with ids (B, num_tokens).

        The ids of k tokens are the first k of the full sequence (prefix property).
        """
        k = self.check_num_tokens(num_tokens)
        self.check_images(x)
        ids = []
        for part in x.split(self.max_batch):
            with self.cpu_bf16_autocast(part):
                latents = self.vae.encode(part.to(self.device, torch.float32)).float()
            ids.append(self.encode_latents(latents, k)[1])
        return self.make_tokens([torch.cat(ids)], sources)

    def ids_to_register_codes(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """(B, k) ids -> (codes (B, N, d) padded with zero codes, keep_k (B,))."""
        batch, k = ids.shape
        n = self.config.num_registers
        if not 1 <= k <= n:
            raise TokError(f"can decode 1..{n} tokens per image, got {k}")
        codes = self.quantizer.ids_to_codes(ids.long())
        codes = F.pad(codes, (0, 0, 0, n - k))  # padded slots are replaced by the mask token
        keep_k = torch.full((batch,), k, device=ids.device, dtype=torch.long)
        return codes.float(), keep_k

    @torch.inference_mode()
    def decode(
        self,
        tokens: Tokens | Tensor,
        *,
        steps: int | None = None,
        guidance: float | Callable[[float], float] | None = None,
        norm_guidance: bool = False,
        sampler: str = "euler",
        seed: int | None = 0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Tokens (or ids (B, k)) -> images (B, 3, S, S) in [-1, 1].

        Args:
            steps: Euler steps from t=1 (noise) to t=0; default `config.decode_steps`.
                One step returns the flow model's mean prediction (highest PSNR, blurrier);
                more steps give sharper samples.
            guidance: classifier-free guidance scale (1.0 = off), or a function of t.
            norm_guidance: use APG instead of plain CFG (the official README uses 7.5 with APG).
            sampler: "euler" (official) or one of diffusers' flow schedulers, "heun", "dpm++",
                "unipc" (see `samplers.py`; `steps` counts scheduler steps).
            seed / generator: the initial noise (decoding is deterministic for a fixed seed).
        """
        if isinstance(tokens, Tokens):
            self.check_tokens(tokens)
            ids = tokens.streams[0]
        else:
            ids = tokens
        if ids.ndim != 2:
            raise ValueError(f"expected ids (B, k), got {tuple(ids.shape)}")
        check_ids(ids, self.quantizer.vocab_size, "token ids")
        steps = self.config.decode_steps if steps is None else steps
        guidance = self.config.decode_guidance if guidance is None else guidance
        codes, keep_k = self.ids_to_register_codes(ids.to(self.device))
        # The whole batch's noise is drawn first, so splitting it into `max_batch` parts changes nothing.
        cfg = self.config
        if generator is None and seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(seed)
        shape = (len(ids), cfg.vae.latent_channels, cfg.latent_size, cfg.latent_size)
        noise = torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device)
        images = []
        for start in range(0, len(ids), self.max_batch):
            part = slice(start, start + self.max_batch)
            latents = self.sample_latents(codes[part], keep_k[part], noise[part], steps, guidance, norm_guidance, sampler)
            with self.cpu_bf16_autocast(latents):
                images.append(self.vae.decode(latents.float()).float().clamp(-1, 1))
        return torch.cat(images)

    def sample_latents(
        self,
        codes: Tensor,
        keep_k: Tensor,
        x: Tensor,
        steps: int,
        guidance: float | Callable[[float], float],
        norm_guidance: bool,
        sampler: str = "euler",
    ) -> Tensor:
        """Integrate the flow from noise `x` at t = 1 to t = 0 with `sampler` (official: Euler), optional CFG."""
        batch, device = codes.shape[0], codes.device
        scale_at = guidance if callable(guidance) else (lambda t: guidance)
        use_cfg = callable(guidance) or guidance != 1.0
        no_null = torch.zeros(batch, dtype=torch.bool, device=device)
        kept = int(keep_k[0])  # collapsible only when every image keeps the same number
        if not bool((keep_k == kept).all()):
            kept = self.config.num_registers
        with self._autocast(x):
            registers = self.decoder.condition(codes, keep_k, no_null)
            null = self.decoder.condition(codes, keep_k, ~no_null) if use_cfg else None
        if self.collapse_registers:  # the masked (and null) registers run as one, see FlexTokDecoder.collapse
            registers, repeats = self.decoder.collapse(registers, kept)
            null, null_repeats = self.decoder.collapse(null, 0) if use_cfg else (None, 1)
        else:
            repeats = null_repeats = 1
        apg = AdaptiveProjectedGuidance() if norm_guidance else None

        def velocity(x: Tensor, t: float) -> Tensor:
            t_batch = torch.full((batch,), t, device=device)
            with self._autocast(x):
                v_cond = self.decoder(x, t_batch, registers, repeats).float()
                if not use_cfg:
                    return v_cond
                v_uncond = self.decoder(x, t_batch, null, null_repeats).float()
            w = float(scale_at(t))
            return apg(v_cond, v_uncond, w) if apg else v_uncond + w * (v_cond - v_uncond)

        return integrate(velocity, x, steps, sampler)

    # -- training ----------------------------------------------------------------------------
    def sample_keep_k(self, batch: int, device: torch.device, full_prob: float = 0.0) -> Tensor:
        """Prefix lengths for nested dropout, (B,); with probability `full_prob` a sample keeps
        all registers (a recipe's way to weight the full-length decode more)."""
        n = self.config.num_registers
        if self.config.nested_dropout_mode == "uniform":
            keep_k = torch.randint(1, n + 1, (batch,), device=device)
        else:
            powers = torch.tensor([2**i for i in range(int(math.log2(n)) + 1)], device=device)
            keep_k = powers[torch.randint(len(powers), (batch,), device=device)]
        if full_prob > 0:
            keep_k = torch.where(torch.rand(batch, device=device) < full_prob, n, keep_k)
        return keep_k

    def flow_loss(self, latents: Tensor, keep_k: Tensor | None = None) -> TokenizerOutput:
        """Rectified-flow loss on scaled latents with nested dropout and CFG dropout.

        x_t = t * noise + (1 - t) * x0 with t ~ sigmoid(N(0, 1)) (shifted by `config.time_shift`);
        target velocity noise - x0.
        """
        batch, device = latents.shape[0], latents.device
        codes, _ = self.encode_latents(latents)
        keep_k = self.sample_keep_k(batch, device) if keep_k is None else keep_k
        null = torch.rand(batch, device=device) < self.config.cfg_dropout_prob
        registers = self.decoder.condition(codes, keep_k, null)
        noise = torch.randn_like(latents)
        t = torch.sigmoid(torch.randn(batch, device=device))
        shift = self.config.time_shift
        t = shift * t / (1 + (shift - 1) * t)
        noised = t[:, None, None, None] * noise + (1 - t[:, None, None, None]) * latents
        with self._autocast(latents):
            velocity = self.decoder(noised, t, registers).float()
        loss = F.mse_loss(velocity, noise - latents)
        return TokenizerOutput(recon=velocity, losses={"flow": loss})

    def forward(self, x: Tensor) -> TokenizerOutput:
        """Training path on images (B, 3, S, S) in [-1, 1]; the VAE is frozen (stage 0)."""
        self.check_images(x)
        with torch.no_grad():
            latents = self.vae.encode(x)
        return self.flow_loss(latents)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, tokens=1..{self.config.num_registers} x {self.quantizer.vocab_size}"


def build(config: FlexTokConfig | dict[str, Any]) -> FlexTok:
    if isinstance(config, dict):
        config = FlexTokConfig.from_dict(config)
    return FlexTok(config)
