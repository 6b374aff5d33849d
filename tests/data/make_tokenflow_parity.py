"""Records reference outputs of the official TokenFlow model for tests/tokenizers/tokenflow/test_tokenflow_parity.py.

Not run by the tests. How `tokenflow_parity.safetensors` was made (2026-11-23):

    # ByteVisionLab/TokenFlow @ 9812da0, unpacked to $OFFICIAL (git archive HEAD tokenflow | tar -x)
    pip install --target $DEPS --no-deps transformers==5.23.0 timm==1.0.31
    cd $OFFICIAL/tokenflow && PYTHONPATH=.:$DEPS .venv/bin/python tests/data/make_tokenflow_parity.py OUT

It builds the official `TokenFlow` module (tokenizer/vq_model.py) twice, with random weights
(seed 0), and shrinks its parts to test size by swapping in other instances of the *official*
classes (the official constructor hard-codes widths: 768/1152-wide towers, a 128-channel CNN):

* "b": teacher clipb_224 with infer_interpolate (scales 1..16 at run time), the official OpenAI
  CLIP `VisionTransformer` (width 64, 2 layers, 4 heads, patch 16) with position embeddings made
  for 48 px and run at 64 px (interpolated 3x3 -> 4x4), the official BEiT `VisionTransformer` as
  semantic decoder (width 64, depth 1, pos-emb grid 7 -> interpolated to 4), pixel `Encoder` /
  `Decoder` (ch 32, ch_mult 1,1,1,1,1, 1 / 1+1 blocks per level), codebook 128,
  scales [1, 2, 3, 4] on a 4x4 grid, raw [-1, 1] pixels into the CLIP tower.
* "xl": teacher siglip_384, Hugging Face `SiglipVisionModel` (transformers 5.23; width 64,
  3 layers, 4 heads, MLP 128, patch 14, 56 px), semantic decoder from the official constructor
  (width 64, depth 3, pos-emb grid 27 interpolated to 4), SigLIP scaling layer, pixel branch at
  64 px (the official bicubic resize 56 -> 64 px), scales [1, 2, 3, 4], codebook 128; the
  official decode resizes its output to 384 px.

Weights are rounded to float16 values and stored in half precision (exact). For each: the
state dict (official keys; transformers 5 names the SigLIP tower without the `vision_model.`
prefix that the released checkpoint, saved with transformers 4, has), the input images, the official `encode` outputs
(f_hat and indices), `decode(f_hat)` (semantic features and image), `decode_code` of all ids and
of a 2-scale prefix ("b" only; "xl" stores the pixel decoder's output before the resize to 384 px
instead), and the parameter counts of the official released configurations (built
on the CPU with the teachers swapped for same-shape modules). Only tensors are stored;
no official code is copied into this repository.
"""

import json
import sys
import types

import torch
from safetensors.torch import save_file
from torch import nn

sys.modules.setdefault("ftfy", types.ModuleType("ftfy"))  # only the CLIP text tokenizer uses it
import transformers.modeling_utils as hf_modeling_utils

# transformers 5 dropped these helpers; the official module only uses them for `.device`/`.dtype`.
hf_modeling_utils.get_parameter_device = getattr(hf_modeling_utils, "get_parameter_device", lambda m: next(m.parameters()).device)
hf_modeling_utils.get_parameter_dtype = getattr(hf_modeling_utils, "get_parameter_dtype", lambda m: next(m.parameters()).dtype)

import tokenizer.clip.clip as clip_module
import tokenizer.clip.model as clip_model
from tokenizer import (
    vq_model,
    vqkd_model,
)
from transformers import SiglipVisionConfig
from transformers.models.siglip.modeling_siglip import SiglipVisionModel


def clip_tower(resolution: int, width: int, layers: int, heads: int):
    def load(*args, **kwargs):
        visual = clip_model.VisionTransformer(resolution, 16, width, layers, heads, 512)
        del visual.proj
        return visual

    return load


def small_pixel_branch(model, z_channels: int = 32):
    model.encoder = vq_model.Encoder(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, z_channels=z_channels)
    model.decoder = vq_model.Decoder(ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, z_channels=z_channels)


def randomize(model):
    """Non-trivial values everywhere (norm weights and zero-initialised biases included), rounded
    to float16 values so the weights can be stored in half precision without changing them."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(p + 0.05 * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())


def record(model, x, prefix, out, code_images=True):
    model.eval()
    with torch.no_grad():
        f_hat, _, ids = model.encode(x)
        semantic, image = model.decode(f_hat)
        code_semantic, code_image = model.decode_code(ids)
        n2 = sum(s * s for s in model.scale_rq_layers[:2])
        _, prefix_image = model.decode_code(ids[:, :n2])
        vqgan = torch.split(f_hat, [model.semantic_code_dim, model.vqgan_code_dim], dim=1)[1]
        raw_image = model.decoder(model.post_quant_conv(vqgan))
    for k, v in model.state_dict().items():
        out[f"{prefix}.weights.{k}"] = v.half().contiguous() if v.is_floating_point() else v.contiguous()
    out.update(
        {
            f"{prefix}.input": x,
            f"{prefix}.f_hat": f_hat,
            f"{prefix}.ids": ids,
            f"{prefix}.semantic": semantic,
            f"{prefix}.raw_image": raw_image,
            f"{prefix}.code_semantic": code_semantic,
        }
    )
    if code_images:
        out[f"{prefix}.image"] = image
        out[f"{prefix}.code_image"] = code_image
        out[f"{prefix}.prefix_image"] = prefix_image


def make_b(out):
    torch.manual_seed(0)
    clip_module.load_clip_vision = clip_tower(48, 64, 2, 4)
    args = vq_model.ModelArgs(
        codebook_size=128, codebook_embed_dim=8, semantic_code_dim=32, commit_loss_beta=0.25,
        teacher="clipb_224", infer_interpolate=True, z_channels=32,
        encoder_ch_mult=[1, 1, 1, 1, 2], decoder_ch_mult=[1, 1, 1, 1, 2],
    )
    model = vq_model.TokenFlow(args)
    small_pixel_branch(model)
    model.decoder_vqkd = vqkd_model.VisionTransformer(
        img_size=7, patch_size=1, in_chans=32, num_classes=0, embed_dim=64, depth=1, num_heads=4,
        qkv_bias=True, norm_layer="LayerNorm", init_values=0.0, use_mean_pooling=True,
    )
    model.encode_task_layer = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 32))
    model.decode_task_layer = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 48))
    model.scale_rq_layers = [1, 2, 3, 4]
    model.quantize.codebook_used = torch.zeros(512)
    randomize(model)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    record(model, x, "b", out)


def make_xl(out):
    torch.manual_seed(0)
    config = SiglipVisionConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        image_size=56, patch_size=14, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
    )
    config._attn_implementation = "eager"
    vq_model.SiglipVisionModel.from_pretrained = staticmethod(lambda *a, **k: SiglipVisionModel(config))
    defaults = vq_model.get_model_default_params
    vq_model.get_model_default_params = lambda: {**defaults(), "embed_dim": 64, "num_heads": 4}
    args = vq_model.ModelArgs(
        codebook_size=128, codebook_embed_dim=8, semantic_code_dim=32, commit_loss_beta=0.25,
        teacher="siglip_384", z_channels=32, encoder_ch_mult=[1, 1, 1, 1, 2], decoder_ch_mult=[1, 1, 1, 1, 2],
    )
    model = vq_model.TokenFlow(args)
    vq_model.get_model_default_params = defaults
    small_pixel_branch(model)
    model.scale_rq_layers = [1, 2, 3, 4]
    model.quantize.codebook_used = torch.zeros(512)
    randomize(model)
    x = torch.rand(1, 3, 56, 56, generator=torch.Generator().manual_seed(3)) * 2 - 1
    # The 384 px outputs are large: store the decoder output before the final resize ("b" covers
    # decoding from ids).
    record(model, x, "xl", out, code_images=False)


def official_counts():
    """Parameter counts of the released configurations (built on the CPU: the official BEiT
    constructor calls .item(), which the meta device refuses)."""
    counts = {}
    torch.set_default_dtype(torch.bfloat16)  # half the memory; counts do not depend on the dtype
    clip_module.load_clip_vision = clip_tower(224, 768, 12, 12)
    b = vq_model.TokenFlow(vq_model.ModelArgs(codebook_size=32768, teacher="clipb_224", enhanced_decoder=True, infer_interpolate=True))
    counts["b"] = sum(p.numel() for p in b.parameters())
    so400m = SiglipVisionConfig(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
        image_size=384, patch_size=14,
    )
    vq_model.SiglipVisionModel.from_pretrained = staticmethod(lambda *a, **k: SiglipVisionModel(so400m))
    counts["b.keys"] = len(b.state_dict())
    del b
    xl = vq_model.TokenFlow(vq_model.ModelArgs(codebook_size=32768, teacher="siglip_384"))
    counts["xl"] = sum(p.numel() for p in xl.parameters())
    counts["xl.decoder_vqkd.pos_embed"] = list(xl.decoder_vqkd.pos_embed.shape)
    counts["xl.keys"] = len(xl.state_dict())
    return counts


if __name__ == "__main__":
    out = {}
    make_b(out)
    make_xl(out)
    counts = official_counts()
    print(json.dumps(counts))
    save_file({k: v.contiguous() for k, v in out.items()}, sys.argv[1], metadata={"official_counts": json.dumps(counts)})
