"""HieraTok: a multi-scale ViT image tokenizer (Chen et al., arXiv 2509.23736).

No code, weights or method details of HieraTok are public (only the abstract could be read),
so this is our re-implementation of what the abstract states; every other choice is a field of
`HieraTokConfig`. Data flow:

    image -> patch embed -> ViT encoder -> finest token map (h x w x D)
          -> area-pooled pyramid over `scales` (+ per-scale and 2D position embeddings)
          -> [optional refiner blocks with the scale mask] -> per-token bottleneck (FSQ or KL)
          -> tokens of all scales, coarse to fine -> ViT decoder with the scale-causal mask
          -> pixels read from the finest-scale positions -> unpatchify

Confirmed by the abstract:
- a ViT tokenizer whose encoder output map is downsampled to several resolutions;
- the tokens of all scales form one sequence, coarse first;
- a scale-causal attention mask: information flows from low-resolution to high-resolution
  scales only.

Ours (not confirmed; each is a config field with the fact sheet's default):
- the mask sits in the decoder (`refiner_depth` > 0 also applies it in extra encoder blocks
  over the multi-scale sequence); attention is bidirectional inside a scale;
- area pooling, the scale list (1, 2, 4, 8, 16 at 256 / patch 16), the learned per-scale
  embedding plus fixed 2D sin-cos positions at each scale's own resolution;
- all scales are kept as the latent (341 tokens at 256 px, of which 256 are the finest grid);
- bottleneck: FSQ [8, 8, 8, 5, 5, 5] per token (the toolkit's discrete default), or a diagonal
  Gaussian KL latent of 32 channels with a global mean/scale normalisation (MingTok style),
  which the fact sheet judges the paper's more likely choice;
- pre-norm blocks with SwiGLU MLPs and QK-norm (the shared `tok.nn.transformer.Block`),
  sizes of `hieratok-b` = the group's MingTok (768/12 encoder, 1024/24 decoder);
- pixels from the finest-scale positions only; coarse prefixes decode by nearest upsampling of
  the last kept scale's latents into the missing finer scales (`prefix_dropout` trains for it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ...core import Tokenizer, TokenizerOutput, TokenLayout, Tokens, TokError
from ...core.media import check_model_square, from_model_range, to_model_square
from ...core.quantize import FSQQuantizer, check_ids
from ...nn.embeddings import sincos_2d
from ...nn.masks import block_causal_mask
from ...nn.patch import PatchEmbed, unpatchify
from ...nn.transformer import Block
from .config import HieraTokConfig
from .pyramid import ScaleEmbedding, area_pool_matrix, prefix_fill_index


def _blocks(dim: int, depth: int, config: HieraTokConfig) -> nn.ModuleList:
    hidden = int(2 * config.mlp_ratio * dim / 3)
    return nn.ModuleList(Block(dim, config.head_dim, hidden) for _ in range(depth))


class HieraTokEncoder(nn.Module):
    """Image -> latent parameters of every scale, (B, L, c) for FSQ or (B, L, 2c) for KL."""

    def __init__(self, config: HieraTokConfig):
        super().__init__()
        dim, grid = config.encoder_dim, config.grid_size
        self.patch_embed = PatchEmbed(3, config.patch_size, dim)
        with torch.device("cpu"):
            table = sincos_2d(grid, grid, dim).flatten(2).transpose(1, 2)[0]  # (N, D), rows first
        if config.position_embedding == "learned":
            self.pos_embed = nn.Parameter(torch.randn_like(table) * 0.02)
        else:
            self.register_buffer("pos_embed", table, persistent=False)
        self.blocks = _blocks(dim, config.encoder_depth, config)
        self.register_buffer("pool", area_pool_matrix(config.scales, grid), persistent=False)
        self.scale_embed = ScaleEmbedding(dim, config.scales, config.position_embedding)
        self.refiner = _blocks(dim, config.refiner_depth, config)
        self.norm = nn.LayerNorm(dim)
        out = config.latent_channels * (2 if config.bottleneck == "kl" else 1)
        self.to_latent = nn.Linear(dim, out)

    def finest_map(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, N, D), the single-scale ViT encoder output."""
        h = self.patch_embed(x) + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        pyramid = torch.matmul(self.pool.to(x.dtype), self.finest_map(x))  # (B, L, D), all scales at once
        h = self.scale_embed(pyramid)
        for block in self.refiner:
            h = block(h, mask)
        return self.to_latent(self.norm(h))


class HieraTokDecoder(nn.Module):
    """Latents of every scale (B, L, c) -> image (B, 3, H, W) read from the finest scale."""

    def __init__(self, config: HieraTokConfig):
        super().__init__()
        dim = config.decoder_dim
        self.grid, self.patch_size, self.num_finest = config.grid_size, config.patch_size, config.grid_size**2
        self.from_latent = nn.Linear(config.latent_channels, dim)
        self.scale_embed = ScaleEmbedding(dim, config.scales, config.position_embedding)
        self.blocks = _blocks(dim, config.decoder_depth, config)
        self.norm = nn.LayerNorm(dim)
        self.to_pixels = nn.Linear(dim, config.patch_size**2 * 3)

    def hidden(self, z: Tensor, mask: Tensor | None) -> Tensor:
        """(B, L, c) -> (B, L, D) token states after the last block (every scale)."""
        h = self.scale_embed(self.from_latent(z))
        for block in self.blocks:
            h = block(h, mask)
        return h

    def forward(self, z: Tensor, mask: Tensor | None) -> Tensor:
        finest = self.hidden(z, mask)[:, -self.num_finest :]
        return unpatchify(self.to_pixels(self.norm(finest)), self.grid, self.grid, self.patch_size)


class HieraTok(Tokenizer):
    """The HieraTok tokenizer: images (B, 3, S, S) in [-1, 1] <-> one id map per scale.

    Layout `scales`: stream k holds the (B, s_k, s_k) ids of scale k, coarse to fine. Files and
    `decode` accept any prefix of the scales (the first K); missing finer scales are filled from
    scale K. The KL variant (`bottleneck="kl"`) has no ids: use `encode_latents` /
    `decode_latents`.
    """

    modality = "image"
    compile_parts = ("encoder", "decoder")

    def __init__(self, config: HieraTokConfig):
        super().__init__(config)
        self.encoder = HieraTokEncoder(config)
        self.decoder = HieraTokDecoder(config)
        self.quantizer = FSQQuantizer(config.fsq_levels) if config.bottleneck == "fsq" else None
        if config.bottleneck == "kl":
            # Global latent normalisation for downstream generators: z_model = (z - mean) * scale.
            self.register_buffer("latent_mean", torch.zeros(()))
            self.register_buffer("latent_scale", torch.ones(()))
        lengths = config.scale_lengths
        use_mask = config.mask == "scale_causal" and len(lengths) > 1
        self.register_buffer("attn_mask", block_causal_mask(lengths) if use_mask else None, persistent=False)
        self.register_buffer("prefix_fill", prefix_fill_index(config.scales), persistent=False)
        self.apply(_init_weights)

    # -- layout ---------------------------------------------------------------------------------
    @property
    def num_scales(self) -> int:
        return len(self.config.scales)

    def layout_for(self, num_scales: int) -> TokenLayout:
        """The layout of the first `num_scales` scales."""
        if self.quantizer is None:
            raise TokError(f"model {self.name!r} has continuous (KL) latents and no token ids; use encode_latents")
        cfg = self.config
        return TokenLayout(
            kind="scales",
            vocab_sizes=(self.quantizer.vocab_size,) * num_scales,
            axes=(("h", "w"),) * num_scales,
            extra={"image_size": cfg.image_size, "scales": list(cfg.scales[:num_scales])},
        )

    @property
    def layout(self) -> TokenLayout:
        return self.layout_for(self.num_scales)

    def check_scales(self, scales: int | None, available: int | None = None) -> int:
        """A number of leading scales to keep, 1..available (default: all)."""
        available = self.num_scales if available is None else available
        if scales is None:
            return available
        if isinstance(scales, bool) or not isinstance(scales, int) or not 1 <= scales <= available:
            raise TokError(f"number of scales must be an integer in 1..{available}, got {scales!r}")
        return scales

    def accepts_layout(self, layout: TokenLayout) -> bool:
        """A file may hold only the first K scales."""
        k = layout.num_streams
        return 1 <= k <= self.num_scales and layout.compatible_with(self.layout_for(k))

    # -- media ----------------------------------------------------------------------------------
    def preprocess(self, image: Tensor) -> Tensor:
        """(3, H, W) or (B, 3, H, W) in [0, 1] -> (B, 3, S, S) in [-1, 1] (shorter side to S, center crop)."""
        return to_model_square(image, self.config.image_size)

    def postprocess(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [0, 1]."""
        return from_model_range(x)

    def check_images(self, x: Tensor) -> None:
        check_model_square(x, self.config.image_size, self.name)

    def _autocast(self, x: Tensor):
        # bf16 trunks on GPU; CPU stays fp32.
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=x.device.type == "cuda")

    # -- latents --------------------------------------------------------------------------------
    def fill_prefix(self, z: Tensor, num_scales: int | Tensor) -> Tensor:
        """Latents of the first K scales (B, L_K, c) -> (B, L, c) with finer scales filled from scale K.

        `num_scales` may be a (B,) tensor (training: one K per sample); then `z` is full length.
        """
        if isinstance(num_scales, Tensor):
            index = self.prefix_fill[num_scales - 1]  # (B, L)
            return z.gather(1, index[..., None].expand(-1, -1, z.shape[-1]))
        return z[:, self.prefix_fill[num_scales - 1]]

    def _latent_params(self, x: Tensor) -> Tensor:
        self.check_images(x)
        with self._autocast(x):
            return self.encoder(x, self.attn_mask).float()

    def encode_latents(self, x: Tensor) -> Tensor:
        """images -> (B, L, c) latents of all scales, coarse to fine: FSQ codes, or for the KL
        variant the normalised posterior mean (z - latent_mean) * latent_scale."""
        params = self._latent_params(x)
        if self.quantizer is not None:
            return self.quantizer(params).z_q
        mean = params.chunk(2, dim=-1)[0]
        return (mean - self.latent_mean) * self.latent_scale

    def decode_latents(self, z: Tensor, num_scales: int | None = None) -> Tensor:
        """(B, L_K, c) latents of the first K scales (as `encode_latents` returns them) -> images."""
        k = self.check_scales(num_scales)
        expected = sum(self.config.scale_lengths[:k])
        if z.ndim != 3 or z.shape[1:] != (expected, self.config.latent_channels):
            raise TokError(f"expected latents (B, {expected}, {self.config.latent_channels}) for {k} scales, got {tuple(z.shape)}")
        if self.quantizer is None:
            z = z / self.latent_scale + self.latent_mean
        if k < self.num_scales:
            z = self.fill_prefix(z, k)
        with self._autocast(z):
            return self.decoder(z, self.attn_mask).float().clamp(-1, 1)

    # -- ids ------------------------------------------------------------------------------------
    def split_scales(self, ids: Tensor) -> list[Tensor]:
        """(B, N) coarse-to-fine ids -> one (B, s, s) map per scale; N must cover whole scales."""
        if ids.ndim != 2:
            raise TokError(f"expected ids (B, N), got {tuple(ids.shape)}")
        ends = torch.tensor(self.config.scale_lengths).cumsum(0).tolist()
        if ids.shape[1] not in ends:
            raise TokError(f"a sequence of {ids.shape[1]} tokens is not a whole number of scales (valid lengths: {', '.join(map(str, ends))})")
        k = ends.index(ids.shape[1]) + 1
        chunks = ids.split(list(self.config.scale_lengths[:k]), dim=1)
        return [c.reshape(-1, s, s) for c, s in zip(chunks, self.config.scales)]

    @torch.inference_mode()
    def encode(self, x: Tensor, *, num_tokens: int | None = None, scales: int | None = None, sources: list[dict] | None = None) -> Tokens:
        """images (B, 3, S, S) in [-1, 1] -> Tokens with one (B, s, s) id map per scale.

        `scales` keeps only the first K scales (their ids are those of the full encoding).
        """
        self.check_num_tokens(num_tokens)
        if self.quantizer is None:
            raise TokError(f"model {self.name!r} has continuous (KL) latents and no token ids; use encode_latents")
        k = self.check_scales(scales)
        ids = self.quantizer(self._latent_params(x.to(self.device, torch.float32))).ids
        return self.make_tokens(self.split_scales(ids)[:k], sources, self.layout_for(k))

    @torch.inference_mode()
    def decode(self, tokens: Tokens | list[Tensor] | Tensor, *, scales: int | None = None) -> Tensor:
        """Tokens (or a list of (B, s, s) id maps, or coarse-to-fine ids (B, N)) -> images in [-1, 1].

        `scales` decodes only the first K of the given scales.
        """
        if self.quantizer is None:
            raise TokError(f"model {self.name!r} has continuous (KL) latents and no token ids; use decode_latents")
        if isinstance(tokens, Tokens):
            self.check_tokens(tokens)
            streams = list(tokens.streams)
        elif isinstance(tokens, Tensor):
            streams = self.split_scales(tokens)
        else:
            streams = list(tokens)
        if not 1 <= len(streams) <= self.num_scales:
            raise TokError(f"expected 1..{self.num_scales} scales of ids, got {len(streams)}")
        for stream, side in zip(streams, self.config.scales):
            if stream.ndim != 3 or tuple(stream.shape[1:]) != (side, side):
                raise TokError(f"scale {side} ids must have shape (B, {side}, {side}), got {tuple(stream.shape)}")
        k = self.check_scales(scales, len(streams))
        ids = torch.cat([s.flatten(1) for s in streams[:k]], dim=1).to(self.device)
        check_ids(ids, self.quantizer.vocab_size, "token ids")
        codes = self.quantizer.ids_to_codes(ids.long()).float()
        return self.decode_latents(codes, k)

    # -- training -------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> TokenizerOutput:
        """Training pass: reconstruction from all scales (or a random prefix, `prefix_dropout`),
        FSQ ids (B, L) or the KL term (per-element mean) in `losses`."""
        params = self._latent_params(x)
        losses: dict[str, Tensor] = {}
        if self.quantizer is not None:
            out = self.quantizer(params)
            z = out.z_q
        else:
            mean, logvar = params.chunk(2, dim=-1)
            logvar = logvar.clamp(-30.0, 20.0)
            z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
            losses["kl"] = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        if self.training and self.config.prefix_dropout > 0 and self.num_scales > 1:
            batch = z.shape[0]
            k = torch.randint(1, self.num_scales, (batch,), device=z.device)
            keep_all = torch.rand(batch, device=z.device) >= self.config.prefix_dropout
            z = self.fill_prefix(z, torch.where(keep_all, self.num_scales, k))
        with self._autocast(z):
            recon = self.decoder(z, self.attn_mask).float()
        return TokenizerOutput(recon, None, losses)

    def extra_repr(self) -> str:
        cfg = self.config
        return f"scales={cfg.scales}, tokens={cfg.num_tokens}, bottleneck={cfg.bottleneck}, mask={cfg.mask}"


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build(config: HieraTokConfig | dict[str, Any]) -> HieraTok:
    return HieraTok(config if isinstance(config, HieraTokConfig) else HieraTokConfig.from_dict(config))
