"""OmniTokenizer for benchmarks/vs_official.py: tok against the official code on the same random weights.

    # a checkout of FoundationVision/OmniTokenizer (tested at 701b619); the repository root, which
    # holds the OmniTokenizer/ package folder
    python benchmarks/vs_official.py --official-src ~/src/OmniTokenizer --model omnitokenizer-imagenet-k600 --batches 1,8

`--model omnitokenizer-<preset>` takes any VQ preset of `tok.tokenizers.omnitokenizer.config`
(hyphens or underscores: imagenet-k600 = imagenet_k600); the releases are 512 wide at 256 px.
The "explicit" preset (imagenet-only) is very slow on CPU in both implementations: each global
attention layer runs the continuous relative-bias MLP (2 -> 512 -> 512 -> heads) over all
1024 x 1024 token pairs of a 256 px frame.

What is compared
----------------
* images: the official `VQGAN.encode(x, is_image=True)` (encoder, pre-VQ projection, l2
  normalisation, codebook) -> ids and `VQGAN.decode(ids, is_image=True)` -> pixels, against
  tok's `encode` / `decode` on one-frame clips, at the preset's resolution. Images/s.
* video: the same on clips of `--frames` frames (default: the preset's 17), `is_image=False`;
  frames/s. `--frames 1` times images only.

The official model is not built as its Lightning `VQGAN` (that builds LPIPS, which downloads VGG
weights, and the discriminators): its `OmniTokenizer_Encoder`, `OmniTokenizer_Decoder` and
`Codebook` are built with the release arguments and the official `VQGAN.encode` / `VQGAN.decode`
functions are called on a container holding them, as tests/data/make_omnitokenizer_parity.py
does. The package's `__init__` (the data pipeline) is not run. pytorch_lightning, timm, beartype
and fairscale are only used outside the inference path (a base class, a scheduler, an init
function, a type-checking decorator, a checkpoint wrapper): any of them that is not installed is
replaced by a small stand-in. Weights: the official init plus N(0, 0.02) noise (seed 0); the
codebook is drawn on the unit sphere, where the l2-normalised latents lie, so ids spread over it.
They reach tok through its checkpoint loader: saved as a Lightning-style `.ckpt` with the release
hyper-parameters (under the releases' "casual_" spelling) and read by `load_weights` (safe
unpickling, hyper-parameter check, strict keys).

Precision: `--dtype` is an autocast for both sides. `--ours-dtype bfloat16` runs tok under
`torch.autocast("cpu"/"cuda", bfloat16)` (the OmniTokenizer model sets no autocast of its own, so
the outer one reaches every layer except the nearest-code search, which stays fp32).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import types
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------
# Official modules
# ------------------------------------------------------------------------------------------------
def _import_official(source: Path):
    """The official attention, codebook and model modules, importing the `OmniTokenizer` package
    from `source` without its `__init__` and with stand-ins for the training-only dependencies
    that are not installed."""

    def stand_in(name, **attrs):
        try:
            if all(hasattr(importlib.import_module(name), attr) for attr in attrs):
                return
        except ImportError:
            pass
        parts = name.split(".")
        for i in range(1, len(parts)):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__dict__.update(attrs)

    stand_in("pytorch_lightning", LightningModule=torch.nn.Module)
    stand_in("timm.scheduler.cosine_lr", CosineLRScheduler=object)
    stand_in("timm.models.layers", trunc_normal_=torch.nn.init.trunc_normal_, DropPath=torch.nn.Identity, to_2tuple=lambda x: (x, x))
    stand_in("beartype", beartype=lambda f: f)
    stand_in("fairscale.nn", checkpoint_wrapper=lambda m, **k: m)
    package = types.ModuleType("OmniTokenizer")
    package.__path__ = [str(source / "OmniTokenizer")]
    sys.modules["OmniTokenizer"] = package

    with warnings.catch_warnings():  # deprecation and syntax warnings of the 2024 code base
        warnings.simplefilter("ignore")
        from OmniTokenizer import omnitokenizer
        from OmniTokenizer.modules import attention, codebook

    return attention, codebook, omnitokenizer


def omnitokenizer_pair(name: str, source: Path, device: torch.device):
    """(official container, ours, config) on the same random weights."""
    from einops.layers.torch import Rearrange

    from tok.core.weights import WeightSource
    from tok.tokenizers.omnitokenizer import OmniTokenizer, load_weights, preset

    config = preset(name.replace("-", "_"))
    if config.use_vae:
        raise SystemExit(f"--model omnitokenizer-{name}: a VAE preset (no ids); pick a VQ one, e.g. imagenet-k600")
    attention, codebook, model = _import_official(source)
    # The release code takes SDPA when torch has it (which drops the rel bias and ALiBi); the
    # "explicit" presets need the einsum path, reached by hiding SDPA from the module.
    if config.attention == "explicit":
        attention.F = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if k != "scaled_dot_product_attention"})

    kwargs = {
        "image_size": config.resolution, "patch_embed": "linear", "norm_type": "batch", "window_size": config.window_size,
        "spatial_pos": config.spatial_pos, "patch_size": config.patch_size, "temporal_patch_size": config.temporal_patch_size,
        "temporal_depth": config.temporal_depth, "causal_in_temporal_transformer": config.causal_in_temporal_transformer,
        "causal_in_peg": config.causal_in_peg, "dim": config.dim, "dim_head": config.dim_head, "heads": config.heads,
        "ff_mult": config.ff_mult,
    }
    torch.manual_seed(0)
    official = torch.nn.Module()
    official.encoder = model.OmniTokenizer_Encoder(block=config.enc_block, spatial_depth=len(config.enc_block), **kwargs)
    official.decoder = model.OmniTokenizer_Decoder(block=config.dec_block, spatial_depth=len(config.dec_block), **kwargs)
    official.codebook = codebook.Codebook(config.n_codes, config.codebook_dim, no_random_restart=True)
    official.pre_vq_conv = torch.nn.Sequential(
        Rearrange("b c t h w -> b t h w c"), torch.nn.Linear(config.dim, config.codebook_dim), Rearrange("b t h w c -> b c t h w")
    )
    official.post_vq_conv = torch.nn.Sequential(
        Rearrange("b c t h w -> b t h w c"), torch.nn.Linear(config.codebook_dim, config.dim), Rearrange("b t h w c -> b c t h w")
    )
    # The official `VQGAN.encode` / `VQGAN.decode`, bound to the container, and what they read from `self`.
    official.encode = types.MethodType(model.VQGAN.encode, official)
    official.decode = types.MethodType(model.VQGAN.decode, official)
    official.use_vae, official.l2_code, official.use_external_codebook = False, config.l2_code, False
    official.resolution, official.patch_size = config.resolution, config.patch_size
    with torch.no_grad():
        for p in official.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        codes = F.normalize(torch.randn(config.n_codes, config.codebook_dim), dim=1)
        official.codebook.embeddings.copy_(codes)
        official.codebook.z_avg.copy_(codes)
    official.codebook._need_init = False
    official.eval().requires_grad_(False)

    # Through tok's loader for official checkpoints, as a release `.ckpt` would go.
    hparams = argparse.Namespace(
        embedding_dim=config.dim, heads=config.heads, dim_head=config.dim_head, patch_size=config.patch_size,
        temporal_patch_size=config.temporal_patch_size, enc_block=config.enc_block, dec_block=config.dec_block,
        temporal_depth=config.temporal_depth, twod_window_size=config.window_size, spatial_pos=config.spatial_pos,
        n_codes=config.n_codes, codebook_dim=config.codebook_dim, use_vae=False,
        casual_in_temporal_transformer=config.causal_in_temporal_transformer, casual_in_peg=config.causal_in_peg,
    )
    ours = OmniTokenizer(config)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "official.ckpt"
        torch.save({"state_dict": official.state_dict(), "hyper_parameters": hparams}, path)
        load_weights(ours, WeightSource("explicit", path))
    return official.to(device), ours.eval().requires_grad_(False).to(device), config


# ------------------------------------------------------------------------------------------------
# Inputs: smooth random scenes (low-frequency colour fields plus fine noise), and a camera pan
# ------------------------------------------------------------------------------------------------
def _scenes(n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    low = torch.rand(n, 3, 6, 6, generator=generator)
    x = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)
    return (x + 0.03 * torch.randn(x.shape, generator=generator)).clamp(0, 1) - 0.5  # official range


def _inputs(batch: int, side: int, frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images (B, 3, 1, S, S) and, for frames > 1, clips (B, 3, F, S, S) panning across a scene."""
    generator = torch.Generator().manual_seed(1)
    images = _scenes(batch, side, side, generator)[:, :, None]
    if frames <= 1:
        return images, None
    scene = _scenes(batch, side + frames, side + 2 * frames, generator)
    clips = torch.stack([scene[:, :, i : i + side, 2 * i : 2 * i + side] for i in range(frames)], dim=2)
    return images, clips.contiguous()


# ------------------------------------------------------------------------------------------------
def run_omnitokenizer(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from vs_official import autocast, print_header, time_ops

    official, ours, config = omnitokenizer_pair(args.model.split("-", 1)[1], Path(args.official_src).expanduser().resolve(), device)
    if args.ours_compile:
        ours.compile_networks(args.ours_compile)
    frames = getattr(args, "frames", None) or config.clip_frames
    if (frames - 1) % config.temporal_patch_size:
        raise SystemExit(f"--frames {frames}: frames minus one must be a multiple of the temporal patch {config.temporal_patch_size}")
    biggest = max(args.batches)
    images_all, clips_all = _inputs(biggest, config.resolution, frames)

    # Images go to the official code as (B, 3, H, W) (`is_image=True`), to tok as one-frame clips.
    def official_encode(x, is_image, dtype=dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return official.encode(x[:, :, 0] if is_image else x, is_image=is_image)  # (B, T', h, w)

    def official_decode(ids, is_image, dtype=dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return official.decode(ids, is_image=is_image)  # images (B, 3, H, W)

    def our_encode(x, dtype=args.ours_dtype):
        with autocast(device, dtype):
            return ours.encode(x)

    def our_decode(tokens, dtype=args.ours_dtype):
        with autocast(device, dtype):
            return ours.decode(tokens)

    # Parity in fp32 on the first (up to) two images and on one clip.
    cases = [("images", images_all[: min(2, biggest)].to(device), True)]
    if clips_all is not None:
        cases.append((f"{frames}-frame clip", clips_all[:1].to(device), False))
    failed = False
    for what, x, is_image in cases:
        ids_ref = official_encode(x, is_image, torch.float32)
        ids = our_encode(x, torch.float32).streams[0]
        differ = ids.cpu() != ids_ref.cpu()
        # fp32 rounding differs between the two implementations, so a latent almost equidistant
        # from two codes may pick either: accept a differing id only if, in float64, its distance
        # is within 1e-5 (relative) of the official choice's.
        worst = 0.0
        if differ.any():
            with torch.inference_mode():
                z = official.pre_vq_conv(official.encoder(x[:, :, 0] if is_image else x, is_image))
                z = F.normalize(z, p=2, dim=1).movedim(1, -1).double().cpu()[differ]
            embed = official.codebook.embeddings.double().cpu()
            gap_ours = (z - embed[ids.cpu()[differ]]).pow(2).sum(-1)
            gap_official = (z - embed[ids_ref.cpu()[differ]]).pow(2).sum(-1)
            worst = ((gap_ours - gap_official).abs() / gap_official.clamp_min(1e-12)).max().item()
        # Decode the official ids with ours, so the decode comparison does not depend on id ties.
        reference = official_decode(ids_ref, is_image, torch.float32)
        decoded = our_decode(ours.make_tokens([ids_ref]), torch.float32)
        decoded = decoded[:, :, 0] if is_image else decoded
        diff = (decoded - reference).abs().max().item()
        tolerance = 1e-4 + 1e-4 * reference.abs().max().item()
        print(f"parity (fp32, {what}, batch {x.shape[0]}): ids {1 - differ.float().mean().item():.2%} equal "
              f"(differing ids are float ties: worst relative distance gap {worst:.1e}), "
              f"decoded max |diff| {diff:.2e} (tolerance {tolerance:.1e})", flush=True)
        failed |= worst > 1e-5 or diff > tolerance
        if dtype != torch.float32 or args.ours_dtype != torch.float32 or args.ours_int8:
            ours.cpu_int8 = args.ours_int8
            ids_ref_d = official_encode(x, is_image) if dtype != torch.float32 else ids_ref
            ids_d = our_encode(x).streams[0]
            ref_d = official_decode(ids_ref, is_image).float() if dtype != torch.float32 else reference
            out_d = our_decode(ours.make_tokens([ids_ref])).float()
            out_d = out_d[:, :, 0] if is_image else out_d
            against_fp32 = f" (against the official fp32: {(ids_d.cpu() == ids_ref.cpu()).float().mean().item():.2%})" if dtype != torch.float32 else ""
            ours.cpu_int8 = False
            print(f"  tok in {args.ours_label} against the official in {args.dtype}: ids equal "
                  f"{(ids_d.cpu() == ids_ref_d.cpu()).float().mean().item():.2%}{against_fp32}, decoded max |diff| "
                  f"{(out_d - ref_d).abs().max().item():.2e} on the official fp32 ids", flush=True)
    if failed:
        raise SystemExit("outputs differ: not timing")
    ours.cpu_int8 = args.ours_int8

    rows = []
    sections = [("images/s", "image", images_all, True, 1)]
    if clips_all is not None:
        sections.append(("frames/s", f"{frames}f clip", clips_all, False, frames))
    for unit, label, inputs, is_image, per_item in sections:
        print_header(unit)
        for batch in args.batches:
            x = inputs[:batch].to(device)
            official_ids = official_encode(x, is_image)
            our_tokens = our_encode(x)
            rows += time_ops({
                f"{label} encode": {"official": lambda x=x, i=is_image: official_encode(x, i), "tok": lambda x=x: our_encode(x)},
                f"{label} decode": {"official": lambda c=official_ids, i=is_image: official_decode(c, i),
                                    "tok": lambda t=our_tokens: our_decode(t)},
            }, batch, batch * per_item, unit, args.repeats, device)
    return rows
