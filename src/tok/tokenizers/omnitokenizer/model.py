"""OmniTokenizer (arXiv 2406.09399): one transformer VQGAN / VAE for images and videos.

Pixels are in [-0.5, 0.5] (the official range) with shape (B, 3, F, H, W); an image is a
one-frame clip. The first frame is cut into patch x patch patches, the other F - 1 frames into
temporal_patch x patch x patch tubelets, so F - 1 must be a multiple of the temporal patch.
Encoder: spatial transformer per latent frame, then causal temporal transformer per position.
Decoder: the reverse. Attribute names follow the official release so checkpoint keys line up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import Tensor, nn

from ...core import Tokenizer, TokenizerOutput, TokenLayout, Tokens, TokError
from ...core.media import (
    IMAGE_EXTENSIONS,
    fit_frames,
    read_image,
    read_video,
    write_image,
    write_video,
)
from ...core.media.video import FRAME_FOLDER_FPS
from ...nn.passes import cpu_inference_in_passes
from .clips import clip_spans, latent_spans
from .codebook import Codebook
from .config import OmniTokenizerConfig
from .layers import Attention, Transformer, WindowAttention


def _transformers(cfg: OmniTokenizerConfig, spatial_block: str) -> tuple[Transformer, Transformer]:
    common = {"dim": cfg.dim, "dim_head": cfg.dim_head, "heads": cfg.heads, "ff_mult": cfg.ff_mult, "peg_causal": cfg.causal_in_peg}
    spatial = Transformer(block=spatial_block, window_size=cfg.window_size, spatial_pos=cfg.spatial_pos, **common)
    # The temporal layers keep the default "rel" option (its unused bias MLP is in the checkpoints).
    temporal = Transformer(block="t" * cfg.temporal_depth, causal=cfg.causal_in_temporal_transformer, **common)
    return spatial, temporal


class Encoder(nn.Module):
    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        p, pt, c = cfg.patch_size, cfg.temporal_patch_size, cfg.image_channels
        self.to_patch_emb_first_frame = nn.Sequential(
            Rearrange("b c 1 (h p1) (w p2) -> b 1 h w (c p1 p2)", p1=p, p2=p),
            nn.LayerNorm(c * p * p), nn.Linear(c * p * p, cfg.dim), nn.LayerNorm(cfg.dim),
        )
        self.to_patch_emb = nn.Sequential(
            Rearrange("b c (t pt) (h p1) (w p2) -> b t h w (c pt p1 p2)", p1=p, p2=p, pt=pt),
            nn.LayerNorm(c * pt * p * p), nn.Linear(c * pt * p * p, cfg.dim), nn.LayerNorm(cfg.dim),
        )
        self.enc_spatial_transformer, self.enc_temporal_transformer = _transformers(cfg, cfg.enc_block)

    def forward(self, video: Tensor) -> Tensor:
        """(B, C, F, H, W) -> (B, dim, T', H/p, W/p)."""
        tokens = self.to_patch_emb_first_frame(video[:, :, :1])
        if video.shape[2] > 1:
            tokens = torch.cat([tokens, self.to_patch_emb(video[:, :, 1:])], dim=1)
        b, t, h, w, _ = tokens.shape
        x = self.enc_spatial_transformer(rearrange(tokens, "b t h w d -> (b t) (h w) d"), (b, t, h, w), is_spatial=True)
        x = rearrange(x, "(b t) (h w) d -> (b h w) t d", b=b, h=h)
        x = self.enc_temporal_transformer(x, (b, t, h, w), is_spatial=False)
        return rearrange(x, "(b h w) t d -> b d t h w", b=b, h=h)


class Decoder(nn.Module):
    def __init__(self, cfg: OmniTokenizerConfig):
        super().__init__()
        p, pt, c = cfg.patch_size, cfg.temporal_patch_size, cfg.image_channels
        self.dec_spatial_transformer, self.dec_temporal_transformer = _transformers(cfg, cfg.dec_block)
        self.to_pixels_first_frame = nn.Sequential(
            nn.Linear(cfg.dim, c * p * p), Rearrange("b 1 h w (c p1 p2) -> b c 1 (h p1) (w p2)", p1=p, p2=p)
        )
        self.to_pixels = nn.Sequential(
            nn.Linear(cfg.dim, c * pt * p * p), Rearrange("b t h w (c pt p1 p2) -> b c (t pt) (h p1) (w p2)", p1=p, p2=p, pt=pt)
        )

    def forward(self, z: Tensor) -> Tensor:
        """(B, dim, T', h, w) -> (B, C, 1 + (T' - 1) * temporal_patch, h * p, w * p)."""
        b, _, t, h, w = z.shape
        x = rearrange(z, "b d t h w -> (b h w) t d")
        x = self.dec_temporal_transformer(x, (b, t, h, w), is_spatial=False)
        x = rearrange(x, "(b h w) t d -> (b t) (h w) d", b=b, h=h)
        x = self.dec_spatial_transformer(x, (b, t, h, w), is_spatial=True)
        tokens = rearrange(x, "(b t) (h w) d -> b t h w d", b=b, h=h)
        video = self.to_pixels_first_frame(tokens[:, :1])
        if t > 1:
            video = torch.cat([video, self.to_pixels(tokens[:, 1:])], dim=2)
        return video


def _channel_linear(dim_in: int, dim_out: int) -> nn.Sequential:
    """The official pre/post quantization projection: a Linear over channels of (B, C, T, H, W)."""
    return nn.Sequential(Rearrange("b c t h w -> b t h w c"), nn.Linear(dim_in, dim_out), Rearrange("b t h w c -> b c t h w"))


class OmniTokenizer(Tokenizer):
    """Encoder, bottleneck (codebook, or Gaussian for VAE checkpoints) and decoder, behind the
    Tokenizer contract.

    One model, two modalities: `modality` is "video" and an image is a one-frame clip, whose
    tokens form a (1, h, w) grid; a clip of F frames gives (1 + (F - 1) / temporal_patch, h, w).
    Media tensors are frames (T, 3, H, W) in [0, 1]; model tensors are (B, 3, F, H, W) in
    [-0.5, 0.5], the official range. The codebook exists in VAE checkpoints too (unused), so it is
    always built.
    """

    modality = "video"
    has_cpu_bf16 = True
    compile_parts = ("encoder", "decoder")

    def __init__(self, config: OmniTokenizerConfig):
        super().__init__(config)
        self.cfg = config
        self.resolution = config.resolution  # what read_media fits files to; any multiple of grid_multiple
        self.checkpoint_file = ""  # the file to pick from a weights folder (set by the zoo builder)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.codebook = Codebook(config.n_codes, config.codebook_dim)
        self.pre_vq_conv = _channel_linear(config.dim, config.codebook_dim * (2 if config.use_vae else 1))
        self.post_vq_conv = _channel_linear(config.codebook_dim, config.dim)
        self.set_attention_path(config.attention)

    @property
    def quantizer(self) -> Codebook:
        return self.codebook

    def set_attention_path(self, path: str) -> None:
        """"sdpa" or "explicit" (applies the continuous relative bias and ALiBi)."""
        if path not in ("sdpa", "explicit"):
            raise ValueError(f"attention path must be 'sdpa' or 'explicit', got {path!r}")
        for module in self.modules():
            if isinstance(module, Attention):
                module.explicit = path == "explicit"
        self.attention_path = path

    def init_weights(self) -> None:
        """Stage-1 initialisation (`--initialize_vit`): trunc-normal(0.02) Linears, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, WindowAttention):
                nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)

    # -- the network, one clip at a time ---------------------------------------------------------

    def check_input(self, video: Tensor) -> None:
        cfg = self.cfg
        if video.ndim != 5 or video.shape[1] != cfg.image_channels:
            raise ValueError(f"expected video (B, {cfg.image_channels}, F, H, W), got {tuple(video.shape)}")
        frames, height, width = video.shape[2:]
        if (frames - 1) % cfg.temporal_patch_size:
            raise ValueError(f"frames minus one ({frames - 1}) must be a multiple of the temporal patch {cfg.temporal_patch_size}")
        m = cfg.grid_multiple
        if height != width or height % m:
            raise ValueError(f"frames must be square with a side that is a multiple of {m}, got {height}x{width}")

    def latents(self, video: Tensor) -> Tensor:
        """Pre-bottleneck latents (B, C, T', h, w): l2-normalised for VQ, mean|logvar for VAE."""
        self.check_input(video)
        z = self.pre_vq_conv(self.encoder(video))
        if not self.cfg.use_vae and self.cfg.l2_code:
            z = F.normalize(z, p=2, dim=1)
        return z

    def quantize(self, z: Tensor):
        """(B, C, T', h, w) -> QuantizerOutput with z_q (B, C, T', h, w) and ids (B, T', h, w)."""
        out = self.codebook(rearrange(z, "b c t h w -> b t h w c"))
        out.z_q = rearrange(out.z_q, "b t h w c -> b c t h w")
        return out

    def decode_codes(self, z_q: Tensor) -> Tensor:
        return self.decoder(self.post_vq_conv(z_q))

    def decode_ids(self, ids: Tensor) -> Tensor:
        """(B, T', h, w) ids -> pixels (B, C, F, H, W)."""
        codes = rearrange(self.codebook.ids_to_codes(ids), "b t h w c -> b c t h w")
        return self.decode_codes(codes)

    # CPU inference runs a batch a few items per network pass, at most this many pixels (frames x
    # height x width) each (see `tok.nn.passes`; imagenet-k600, 2 cores, batch 8, frames/s: images
    # 1.6-1.9 -> 2.1, 17-frame clips 4.9-5.0 -> 5.6-6.3 encode and 5.0-5.1 -> 5.6-6.4 decode).
    cpu_pass_pixels: int = 256 * 256

    def _in_passes(self, fn, x: Tensor, pixels_per_item: int) -> Tensor:
        return cpu_inference_in_passes(fn, self.cpu_pass_pixels // pixels_per_item, x)

    # -- long videos: clip by clip -----------------------------------------------------------

    def _per_clip(self, video: Tensor, fn) -> Tensor:
        """Apply `fn` to consecutive clips of `clip_frames` frames and join the results along time.

        Clips are independent (the model was trained on clips of this length). A last clip whose
        length does not fit the temporal patch is padded by repeating its last frame up to
        1 + k * temporal_patch frames; the frame count recorded in the sources trims it on decode.
        At CPU inference each clip runs in passes of a few items (`cpu_pass_pixels`).
        """
        outputs = []
        for start, length, padded in clip_spans(video.shape[2], self.cfg.clip_frames, self.cfg.temporal_patch_size):
            clip = video[:, :, start : start + length]
            if padded > length:
                clip = torch.cat([clip, clip[:, :, -1:].expand(-1, -1, padded - length, -1, -1)], dim=2)
            outputs.append(self._in_passes(fn, clip, clip[0, 0].numel()))
        return torch.cat(outputs, dim=-3)

    def _decode_per_clip(self, latent: Tensor, fn) -> Tensor:
        """Inverse of `_per_clip` on (B, [C,] T', h, w): chunks of `latent_frames_per_clip` latent
        frames, each run in passes like `_per_clip` (a chunk of T' decodes to 1 + (T' - 1)
        temporal_patch frames)."""
        outputs = []
        for s, n in latent_spans(latent.shape[-3], self.cfg.latent_frames_per_clip):
            chunk = latent[..., s : s + n, :, :]
            pixels = (1 + (n - 1) * self.cfg.temporal_patch_size) * chunk.shape[-2] * chunk.shape[-1] * self.cfg.patch_size**2
            outputs.append(self._in_passes(fn, chunk, pixels))
        return torch.cat(outputs, dim=2)

    # -- Tokenizer contract --------------------------------------------------------------------

    @property
    def layout(self) -> TokenLayout:
        cfg = self.cfg
        return TokenLayout(
            kind="grid",
            vocab_sizes=(cfg.n_codes,),
            axes=(("t", "h", "w"),),
            extra={
                "resolution": self.resolution, "patch_size": cfg.patch_size, "temporal_patch_size": cfg.temporal_patch_size,
                "clip_frames": cfg.clip_frames,
            },
        )

    def preprocess(self, media: Tensor) -> Tensor:
        """An image (3, H, W) or frames (T, 3, H, W) in [0, 1] -> (1, 3, T, S, S) in [-0.5, 0.5].

        Resize rule: the shorter side goes to `self.resolution` (antialiased bicubic, up or down)
        and the center square is kept, since the model needs square frames.
        """
        frames = media[None] if media.ndim == 3 else media
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected an image (3, H, W) or frames (T, 3, H, W), got {tuple(media.shape)}")
        frames = fit_frames(frames.float(), self.resolution)
        return (frames - 0.5).permute(1, 0, 2, 3)[None].to(self.device)

    def postprocess(self, x: Tensor) -> Tensor:
        """(B, 3, F, H, W) in [-0.5, 0.5] -> frames (B, F, 3, H, W) in [0, 1]."""
        return (x.float() + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)

    def _refuse_vae(self, what: str) -> None:
        if self.cfg.use_vae:
            raise TokError(f"model {self.name!r} is a VAE (continuous latents), not a token model: use encode_latents / decode_latents, not {what}")

    @torch.inference_mode()
    def encode(self, x: Tensor, *, sources: list[dict[str, Any]] | None = None) -> Tokens:
        """(B, 3, F, H, W) in [-0.5, 0.5] -> grid ids (B, T', h, w); long videos clip by clip."""
        self._refuse_vae("encode")
        with self.cpu_bf16_autocast(x):  # the codebook searches in fp32 whatever the autocast
            ids = self._per_clip(x, lambda clip: self.quantize(self.latents(clip)).ids)
        return self.make_tokens([ids], sources)

    @torch.inference_mode()
    def decode(self, tokens: Tokens, **opts: Any) -> Tensor:
        """Tokens -> (B, 3, F, H, W); F counts padded frames (trimmed by write_media)."""
        self._refuse_vae("decode")
        self.check_tokens(tokens)
        ids = tokens.streams[0].to(self.device).long()
        with self.cpu_bf16_autocast(ids):
            return self._decode_per_clip(ids, self.decode_ids).float()

    @torch.inference_mode()
    def encode_latents(self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """VAE checkpoints: (B, 3, F, H, W) -> continuous latents (B, 8, T', h, w).

        The posterior mean by default (deterministic); `sample=True` draws from the posterior as
        the official `encode` does. Long videos go clip by clip, as in `encode`.
        """
        if not self.cfg.use_vae:
            raise TokError(f"model {self.name!r} is a VQ model: use encode for token ids")

        def one(clip: Tensor) -> Tensor:
            mean, logvar = self.latents(clip).float().chunk(2, dim=1)
            if not sample:
                return mean
            std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
            return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)

        with self.cpu_bf16_autocast(x):
            return self._per_clip(x, one)

    @torch.inference_mode()
    def decode_latents(self, z: Tensor) -> Tensor:
        """VAE checkpoints: latents (B, 8, T', h, w) -> pixels (B, 3, F, H, W)."""
        if not self.cfg.use_vae:
            raise TokError(f"model {self.name!r} is a VQ model: use decode for token ids")
        z = z.to(self.device)
        with self.cpu_bf16_autocast(z):
            return self._decode_per_clip(z, self.decode_codes).float()

    def forward(self, x: Tensor) -> TokenizerOutput:
        """Training path on one clip (B, 3, F, H, W): losses `commitment` (VQ) or `kl` (VAE, summed
        over latent elements, averaged over the batch, unweighted)."""
        z = self.latents(x)
        if self.cfg.use_vae:
            mean, logvar = z.chunk(2, dim=1)
            logvar = logvar.clamp(-30.0, 20.0)
            sample = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()
            return TokenizerOutput(self.decode_codes(sample), None, {"kl": kl})
        out = self.quantize(z)
        return TokenizerOutput(self.decode_codes(out.z_q), None, {"commitment": out.loss})

    # -- files: images and videos through one model ------------------------------------------

    def read_media(self, path: Path) -> tuple[Tensor, dict[str, Any]]:
        """An image file -> a one-frame clip; a video file or folder of frames -> all its frames.

        Videos need at least two frames (a one-frame video is refused; pass it as an image).
        The source records the frame count and rate so decoding restores both.
        """
        path = Path(path)
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            image, info = read_image(path)
            return self.preprocess(image)[0], {**info.to_dict(), "num_frames": 1}
        frames, info = read_video(path, min_frames=2, fit=self.resolution)  # fitted while decoding
        return self.preprocess(frames)[0], info.to_dict()

    def encode_items(self, items: list[Tensor], sources: list[dict[str, Any]], **opts: Any) -> Tokens | list[Tokens]:
        """One batch when all items have the same shape; otherwise one `Tokens` per item (a list,
        indexed like a batch), since images and videos of other lengths give other grids."""
        if len({tuple(item.shape) for item in items}) == 1:
            return self.encode(torch.stack(items).to(self.device), sources=sources, **opts)
        return [self.encode(item[None].to(self.device), sources=[source], **opts) for item, source in zip(items, sources)]

    def output_suffix(self, source: dict[str, Any] | None) -> str:
        """.png for tokens of an image, .mp4 for tokens of a video."""
        return ".png" if source and source.get("media") == "image" else ".mp4"

    def write_media(self, item: Tensor, path: Path, source: dict[str, Any] | None = None) -> Path:
        """Frames (F, 3, H, W) in [0, 1] -> an image file (one frame) or MP4/GIF at the source's rate,
        trimmed to the source's frame count (padding frames dropped)."""
        path = Path(path)
        source = source or {}
        if source.get("num_frames"):
            item = item[: int(source["num_frames"])]
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            if item.shape[0] != 1:
                raise TokError(f"{path}: a {item.shape[0]}-frame clip cannot be written as an image; use .mp4 or .gif")
            return write_image(item[0], path)
        return write_video(item, path, fps=float(source.get("fps") or FRAME_FOLDER_FPS))
