"""Records reference outputs of the official FlexTok layers for tests/tokenizers/flextok/test_parity.py.

Not run by the tests. How `flextok_parity.safetensors` was made (2026-11-23):

    # apple/ml-flextok @ 87d00cc, unpacked to $OFFICIAL (git archive HEAD flextok | tar -x)
    pip install --target $DEPS mup hydra-core omegaconf antlr4-python3-runtime==4.9.3 --no-deps
    PYTHONPATH=$OFFICIAL:$DEPS .venv/bin/python tests/data/make_flextok_parity.py

It instantiates the official classes at a small width with random weights (seed 0): the encoder
trunk (width 64, two 32-wide heads, so the muP softmax scale 8/head_dim differs from 1/sqrt(head_dim); FlexTransformer, SDPA path with the `causal_last` mask of 16 patches + 8 registers), the
decoder trunk (FlexTransformer with 2-way AdaLN over [patches, registers]), FSQ [8,8,8,5,5,5],
the time embedder (max_timestep 1.0), the 2D sin-cos table, patchify + PatchEmbedder and the
ToPatchesLinearHead + unpatchify, normalized guidance (APG) over three steps, and stores their weights, inputs and outputs. Only tensors
are stored; no official code is copied into this repository.
"""

from functools import partial

import torch
from safetensors.torch import save_file

from flextok.flow_matching.cfg_utils import MomentumBuffer, normalized_guidance
from flextok.model.postprocessors.heads import ToPatchesLinearHead, expand_emb_from_ps, unpatchify
from flextok.model.preprocessors.flex_seq_packing import expand_emb_per_subseq
from flextok.model.preprocessors.patching import PatchEmbedder, patchify
from flextok.model.preprocessors.time_embedding import TimestepEmbedder
from flextok.model.trunks.transformers import FlexTransformer
from flextok.model.utils.posembs import build_2d_sincos_posemb
from flextok.regularizers.quantize_fsq import FSQ

torch.manual_seed(0)
DIM, HEAD, PATCHES, REGISTERS, CHANNELS, GRID, P = 64, 32, 16, 8, 16, 4, 2
out = {}


def randomize(module):
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return module


def store(prefix, module):
    out.update({f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()})


def no_flex(module):
    for m in module.modules():
        if hasattr(m, "use_flex_attention"):
            m.use_flex_attention = False
    return module


# Encoder trunk with the causal_last mask.
length = PATCHES + REGISTERS
mask = torch.zeros(length, length, dtype=torch.bool)
mask[:, :PATCHES] = True
mask[:PATCHES, PATCHES:] = False
mask[PATCHES:, PATCHES:] = torch.ones(REGISTERS, REGISTERS, dtype=torch.bool).tril()
encoder = no_flex(randomize(FlexTransformer("x", "y", dim=DIM, depth=2, head_dim=HEAD, block_mask_read_key="mask"))).eval()
x = torch.randn(1, length, DIM)
with torch.no_grad():
    out["encoder.output"] = encoder({"x": x, "mask": mask})["y"]
out["encoder.input"] = x
store("encoder", encoder)

# Decoder trunk with 2-way AdaLN (first chunk: patches, second: registers).
decoder = no_flex(
    randomize(FlexTransformer("x", "y", dim=DIM, depth=2, head_dim=HEAD, adaLN_emb_read_key="c", adaLN_packing_fn_read_key="pack", adaLN_expansion=2))
).eval()
cond = torch.randn(1, DIM)
pack = partial(expand_emb_per_subseq, packed_shapes_list=[[torch.Size([PATCHES]), torch.Size([REGISTERS])]])
x = torch.randn(1, length, DIM)
with torch.no_grad():
    out["decoder.output"] = decoder({"x": x, "c": cond, "pack": pack})["y"]
out["decoder.input"], out["decoder.cond"] = x, cond
store("decoder", decoder)

# FSQ ids.
fsq = FSQ("z", "q", "ids", levels=[8, 8, 8, 5, 5, 5]).eval()
z = torch.randn(1, 50, 6) * 2
quant, ids = fsq.forward_z(z)
out["fsq.input"], out["fsq.codes"], out["fsq.ids"] = z, quant, ids

# Time embedder.
temb = randomize(TimestepEmbedder("t", "te", dim=DIM, max_timestep=1.0))
t = torch.tensor([0.0, 0.25, 0.999, 1.0])
with torch.no_grad():
    out["time.output"] = temb({"t": t})["te"]
out["time.input"] = t
store("time", temb)

# 2D sin-cos table.
out["posemb.table"] = build_2d_sincos_posemb(GRID, GRID, embed_dim=DIM)

# Patch embedding of a channels-last latent.
patch_emb = randomize(PatchEmbedder("l", "p", "n", patch_sizes=[P, P], channels_in=CHANNELS, dim=DIM))
latent = torch.randn(1, CHANNELS, GRID * P, GRID * P)
with torch.no_grad():
    patches, _ = patchify(latent.permute(0, 2, 3, 1), [P, P], flatten_patches=True)
    out["patch.output"] = patch_emb.patch_proj(patches)
out["patch.input"] = latent
store("patch", patch_emb)

# Velocity head: adaLN-modulated LinearHead, then unpatchify back to the latent grid.
head = randomize(ToPatchesLinearHead("x", "v", dim=DIM, channels_out=CHANNELS, patch_sizes=[P, P], use_mup_readout=False, adaLN_emb_read_key="c"))
x = torch.randn(1, PATCHES, DIM)
with torch.no_grad():
    flat = head.forward_adaLN(x, cond, partial(expand_emb_from_ps, ps=[torch.Size([PATCHES])]))
    grid = unpatchify(flat.reshape(1, GRID, GRID, -1), [P, P])  # (1, H, W, C)
out["head.input"], out["head.output"] = x, grid.permute(0, 3, 1, 2).contiguous()
store("head", head)

# Normalized guidance (APG) over three sampler steps sharing one momentum buffer.
buffer = MomentumBuffer(momentum=-0.5)
for step in range(3):
    cond_pred, uncond_pred = torch.randn(2, CHANNELS, GRID, GRID), torch.randn(2, CHANNELS, GRID, GRID)
    out[f"apg.cond.{step}"], out[f"apg.uncond.{step}"] = cond_pred, uncond_pred
    out[f"apg.output.{step}"] = normalized_guidance(cond_pred, uncond_pred, 7.5, momentum_buffer=buffer)

save_file({k: v.contiguous() for k, v in out.items()}, "flextok_parity.safetensors")
print(f"wrote {len(out)} tensors")
