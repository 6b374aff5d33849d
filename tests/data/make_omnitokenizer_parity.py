"""Records reference ids and reconstructions of the official OmniTokenizer for
tests/tokenizers/omnitokenizer/test_parity.py. Not run by the tests.

How `omnitokenizer_parity.safetensors` was made (2026-11-23):

    # FoundationVision/OmniTokenizer @ 701b619, its OmniTokenizer/ folder unpacked to $OFFICIAL/OmniTokenizer
    OMP_NUM_THREADS=1 .venv/bin/python tests/data/make_omnitokenizer_parity.py $OFFICIAL

The official package needs pytorch_lightning, timm, beartype and fairscale only for things the
tokenizer path does not use (the Lightning base class, a scheduler, a trunc-normal init, a type
checking decorator, a checkpoint wrapper); small stand-ins are put in `sys.modules` so its
`OmniTokenizer_Encoder`, `OmniTokenizer_Decoder` and `Codebook` import unchanged, and the
official `VQGAN.encode` / `VQGAN.decode` functions are called on a container holding them
(the full `VQGAN` would build LPIPS, which downloads VGG weights).

Two small configs (width 32, 2 heads of 16, "ttww" encoder, "tttt" decoder, 2 causal temporal
layers, 8x8 windows, 512 codes of 8 dims), with random weights (official init plus N(0, 0.02)
noise, seed 0, rounded to fp16 so they are stored exactly):
  * "joint": RoPE, temporal patch 4, SDPA path (the release code on torch >= 2.1);
  * "image": continuous relative bias, temporal patch 2, explicit path (F without
    `scaled_dot_product_attention`, so the einsum branch with the rel bias and ALiBi runs).
Inputs (stored as uint8, x = u8 / 255 - 0.5): tests/data/photo.jpg at 128x128, and a 17-frame
64x64 camera pan across it. Stored: weights in the official key layout, inputs, ids, recons.
Only tensors are stored; no official code is copied into this repository.
"""

import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

HERE = Path(__file__).parent


def install_stand_ins() -> None:
    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    module("pytorch_lightning", LightningModule=torch.nn.Module)
    module("timm")
    module("timm.scheduler")
    module("timm.scheduler.cosine_lr", CosineLRScheduler=object)
    module("timm.models")
    module("timm.models.layers", trunc_normal_=torch.nn.init.trunc_normal_, DropPath=torch.nn.Identity, to_2tuple=lambda x: (x, x))
    module("beartype", beartype=lambda f: f)
    module("fairscale")
    module("fairscale.nn", checkpoint_wrapper=lambda m, **k: m)
    # Import the package's modules without running its __init__ (it imports the data pipeline).
    package = module("OmniTokenizer")
    package.__path__ = [str(Path(sys.argv[1]) / "OmniTokenizer")]


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    photo = Image.open(HERE / "photo.jpg").convert("RGB")
    side = min(photo.size)
    square = photo.crop((0, 0, side, side))
    image = np.asarray(square.resize((128, 128), Image.BICUBIC))
    big = np.asarray(square.resize((96, 96), Image.BICUBIC))
    clip = np.stack([big[8 + i // 2 : 72 + i // 2, i * 2 : 64 + i * 2] for i in range(17)])  # diagonal pan
    return torch.from_numpy(image.copy()).permute(2, 0, 1), torch.from_numpy(clip.copy()).permute(3, 0, 1, 2)


def build(spatial_pos: str, temporal_patch: int):
    from einops.layers.torch import Rearrange
    from OmniTokenizer.modules.codebook import Codebook
    from OmniTokenizer.omnitokenizer import OmniTokenizer_Decoder, OmniTokenizer_Encoder

    kwargs = {
        "image_size": 128, "patch_embed": "linear", "norm_type": "batch", "window_size": 8, "spatial_pos": spatial_pos, "patch_size": 8,
        "temporal_patch_size": temporal_patch, "spatial_depth": 4, "temporal_depth": 2, "causal_in_temporal_transformer": True,
        "causal_in_peg": True, "dim": 32, "dim_head": 16, "heads": 2, "ff_mult": 4.0,
    }
    container = torch.nn.Module()
    container.encoder = OmniTokenizer_Encoder(block="ttww", **kwargs)
    container.decoder = OmniTokenizer_Decoder(block="tttt", **kwargs)
    container.codebook = Codebook(512, 8, no_random_restart=True)
    container.pre_vq_conv = torch.nn.Sequential(Rearrange("b c t h w -> b t h w c"), torch.nn.Linear(32, 8), Rearrange("b t h w c -> b c t h w"))
    container.post_vq_conv = torch.nn.Sequential(Rearrange("b c t h w -> b t h w c"), torch.nn.Linear(8, 32), Rearrange("b t h w c -> b c t h w"))
    container.use_vae, container.l2_code, container.use_external_codebook = False, True, False
    container.resolution, container.patch_size = 128, 8
    with torch.no_grad():
        for p in container.parameters():
            p.add_(torch.randn_like(p) * 0.02)
            p.copy_(p.half().float())
        container.codebook.embeddings.copy_(container.codebook.embeddings.half().float())
    container.codebook._need_init = False
    return container.eval()


def main() -> None:
    install_stand_ins()
    import OmniTokenizer.modules.attention as official_attention
    from OmniTokenizer.omnitokenizer import VQGAN

    torch.manual_seed(0)
    image_u8, clip_u8 = inputs()
    out = {"image_u8": image_u8.contiguous(), "clip_u8": clip_u8.contiguous()}
    for name, spatial_pos, temporal_patch, explicit in (("joint", "rope", 4, False), ("image", "rel", 2, True)):
        model = build(spatial_pos, temporal_patch)
        if explicit:
            official_attention.F = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if k != "scaled_dot_product_attention"})
        else:
            official_attention.F = F
        image = (image_u8.float() / 255 - 0.5)[None]
        clip = (clip_u8.float() / 255 - 0.5)[None]
        with torch.no_grad():
            image_ids = VQGAN.encode(model, image, is_image=True)
            image_recon = VQGAN.decode(model, image_ids, is_image=True)
            clip_ids = VQGAN.encode(model, clip, is_image=False)
            clip_recon = VQGAN.decode(model, clip_ids, is_image=False)
        print(name, tuple(image_ids.shape), tuple(image_recon.shape), tuple(clip_ids.shape), tuple(clip_recon.shape))
        out.update({f"{name}.weights.{k}": v.half().contiguous() if v.is_floating_point() else v.contiguous() for k, v in model.state_dict().items()})
        out.update({
            f"{name}.image_ids": image_ids.contiguous(), f"{name}.image_recon": image_recon.contiguous(),
            f"{name}.clip_ids": clip_ids.contiguous(), f"{name}.clip_recon": clip_recon.contiguous(),
        })
    save_file(out, str(HERE / "omnitokenizer_parity.safetensors"))


if __name__ == "__main__":
    main()
