"""TokenFlow for benchmarks/vs_official.py: tok against the official code on the same random weights.

    # ByteVisionLab/TokenFlow (tested at 9812da0): the repository root or its tokenflow/ folder
    # (the one holding the `tokenizer` package); its extra deps on the path:
    #   pip install --target $DEPS transformers==5.23.0 "tokenizers>=0.23.1,<0.24" timm==1.0.31 --no-deps
    PYTHONPATH=$DEPS python benchmarks/vs_official.py --official-src ~/src/TokenFlow --model tokenflow-b --batches 1,8

Models
------
* tokenflow-b: the released TokenFlow-B (tokenflow_clipb_32k_enhanced.pt): CLIP ViT-B/16 tower
  run at 256 px (`infer_interpolate`), enhanced pixel decoder, 32768 codes, 9 scales (817 ids).
* tokenflow-xl: the released TokenFlow-XL (tokenflow_siglip_32k.pt): SigLIP-SO400M at 384 px,
  pixel branch at 432 px, 15 scales (2227 ids). Heavy: meant for a GPU.
* tokenflow-b-test: B's code path (raw-pixel CLIP tower with interpolated position embeddings,
  BEiT semantic decoder, interpolated decoder grid) at the size of the parity tests (64 px, 128
  codes, scales 1-4; tests/data/make_tokenflow_parity.py), for a quick check of this script.

What is compared
----------------
* encode: the official `TokenFlow.encode(x)` (both towers, multi-scale residual VQ with the
  shared-index dual codebook) -> ids (B, sum s^2), against tok's `encode` (Tokens, one stream
  per scale). Images in [-1, 1] at the model's resolution (smooth random scenes).
* decode: the official `decode_code(ids)` -> (semantic features, image), against the same two
  outputs in tok (`ids_to_features` -> `decode_semantic` and `decode_pixels`), so both do the
  same work. (tok's public `decode` returns the image only and skips the semantic decoder,
  which the official code has no way to skip.) Images/s.

The official model is built with its own constructor (`vq_model.TokenFlow(ModelArgs(...))`,
release arguments) without downloads: the teacher tower that the constructor would download
(OpenAI CLIP ViT-B/16 jit file; `google/siglip-so400m-patch14-384`) is replaced by a randomly
initialised instance of the same official / Hugging Face class and shape, as
tests/data/make_tokenflow_parity.py does. The CLIP text tokenizer's `ftfy` import is stubbed
(unused), and transformers 5's missing `get_parameter_device` / `get_parameter_dtype` helpers
(only used for `.device` / `.dtype`) are filled in. Weights: the official init (seed 0) with
noise on the 1-D parameters (norm weights, biases) so none is trivial. They reach tok through
its checkpoint loader: saved as an official-style `.pt` ({"model": state dict}) and read by
`load_weights` (safe unpickling, variant check, strict keys). For XL, transformers 5 names the
SigLIP tower without the `vision_model.` level that the released checkpoint (transformers 4)
has; the keys are renamed to the released layout first.

Precision: `--dtype` is an autocast for both sides. `--ours-dtype bfloat16` runs tok under
`torch.autocast("cpu"/"cuda", bfloat16)`: the TokenFlow model sets no autocast of its own, so the
outer one reaches every layer, except the nearest-code search, which tok's quantizer always runs
in fp32 (autocast off inside it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------
# Official modules
# ------------------------------------------------------------------------------------------------
def _import_official(source: Path):
    """The official `vq_model`, `vqkd_model` and CLIP modules, from `source` (the repository root
    or its tokenflow/ folder)."""
    if (source / "tokenflow" / "tokenizer").is_dir():
        source = source / "tokenflow"
    if not (source / "tokenizer" / "vq_model.py").is_file():
        raise SystemExit(f"--official-src {source}: no tokenizer/vq_model.py (expected a TokenFlow checkout)")
    sys.path.insert(0, str(source))
    sys.modules.setdefault("ftfy", types.ModuleType("ftfy"))  # only the CLIP text tokenizer uses it
    try:
        import transformers.modeling_utils as hf_modeling_utils
    except ImportError as e:
        raise SystemExit(f"the official TokenFlow code needs transformers and timm ({e}); see the module docstring") from None
    # transformers 5 dropped these helpers; the official module only uses them for `.device` / `.dtype`.
    if not hasattr(hf_modeling_utils, "get_parameter_device"):
        hf_modeling_utils.get_parameter_device = lambda m: next(m.parameters()).device
    if not hasattr(hf_modeling_utils, "get_parameter_dtype"):
        hf_modeling_utils.get_parameter_dtype = lambda m: next(m.parameters()).dtype

    import tokenizer.clip.clip as clip_module
    import tokenizer.clip.model as clip_model
    from tokenizer import vq_model, vqkd_model

    return vq_model, vqkd_model, clip_module, clip_model


def _b_test_config():
    """tok's config of the parity tests' B-like model (tests/tokenizers/tokenflow/test_tokenflow_parity.py)."""
    from tok.tokenizers.tokenflow import TokenFlowConfig

    return TokenFlowConfig(
        teacher="clipb_224", image_size=64, scales=(1, 2, 3, 4), pixel_size=64, codebook_size=128,
        ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1, z_channels=32, decoder_ch=32, decoder_res_blocks=1,
        semantic_width=64, semantic_layers=2, semantic_heads=4, semantic_patch=16, semantic_image_size=48,
        decoder_depth=1, decoder_heads=4, decoder_grid=7, semantic_out_dim=48, usage_size=512,
    )


def _build_official(name: str, config, source: Path):
    """The official `TokenFlow` module for `name` (b, xl, b-test), randomly initialised, no downloads."""
    vq_model, vqkd_model, clip_module, clip_model = _import_official(source)
    c = config

    def clip_tower(*args, **kwargs):  # stands in for `clip.load_clip_vision` (a download + jit load)
        visual = clip_model.VisionTransformer(c.semantic_image_size, c.semantic_patch, c.semantic_width, c.semantic_layers,
                                              c.semantic_heads, 512)
        del visual.proj  # as load_clip_vision does
        return visual

    common = {"codebook_size": c.codebook_size, "codebook_embed_dim": c.pixel_code_dim, "semantic_code_dim": c.semantic_code_dim,
              "commit_loss_beta": c.beta}
    saved = clip_module.load_clip_vision, vq_model.SiglipVisionModel.from_pretrained
    clip_module.load_clip_vision = clip_tower
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the constructor prints its configuration
            if name == "b":
                model = vq_model.TokenFlow(vq_model.ModelArgs(teacher="clipb_224", enhanced_decoder=True, infer_interpolate=True, **common))
            elif name == "xl":
                from transformers import SiglipVisionConfig
                from transformers.models.siglip.modeling_siglip import SiglipVisionModel

                siglip = SiglipVisionConfig(
                    hidden_size=c.semantic_width, intermediate_size=c.semantic_mlp, num_hidden_layers=c.semantic_layers,
                    num_attention_heads=c.semantic_heads, image_size=c.semantic_image_size, patch_size=c.semantic_patch,
                    layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh",
                )
                vq_model.SiglipVisionModel.from_pretrained = staticmethod(lambda *a, **k: SiglipVisionModel(siglip))
                model = vq_model.TokenFlow(vq_model.ModelArgs(teacher="siglip_384", **common))
            else:  # b-test: as tests/data/make_tokenflow_parity.py `make_b`, other instances of official classes
                model = vq_model.TokenFlow(vq_model.ModelArgs(
                    teacher="clipb_224", infer_interpolate=True, z_channels=c.z_channels,
                    encoder_ch_mult=list(c.ch_mult), decoder_ch_mult=list(c.ch_mult), **common,
                ))
                model.encoder = vq_model.Encoder(ch=c.ch, ch_mult=c.ch_mult, num_res_blocks=c.num_res_blocks, z_channels=c.z_channels)
                model.decoder = vq_model.Decoder(ch=c.decoder_ch, ch_mult=c.ch_mult, num_res_blocks=c.decoder_res_blocks,
                                                 z_channels=c.z_channels)
                model.decoder_vqkd = vqkd_model.VisionTransformer(
                    img_size=c.decoder_grid, patch_size=1, in_chans=c.semantic_code_dim, num_classes=0, embed_dim=c.semantic_width,
                    depth=c.decoder_depth, num_heads=c.decoder_heads, qkv_bias=True, norm_layer="LayerNorm", init_values=0.0,
                    use_mean_pooling=True,
                )
                w = c.semantic_width
                model.encode_task_layer = torch.nn.Sequential(torch.nn.Linear(w, w), torch.nn.Tanh(), torch.nn.Linear(w, c.semantic_code_dim))
                model.decode_task_layer = torch.nn.Sequential(torch.nn.Linear(w, w), torch.nn.Tanh(), torch.nn.Linear(w, c.semantic_out_dim))
                model.scale_rq_layers = list(c.scales)
                model.quantize.codebook_used = torch.zeros(c.usage_size)
    finally:
        clip_module.load_clip_vision, vq_model.SiglipVisionModel.from_pretrained = saved
    if list(model.scale_rq_layers) != list(c.scales):
        raise SystemExit(f"official scales {model.scale_rq_layers} != tok preset's {list(c.scales)}")
    return model


def tokenflow_pair(name: str, source: Path, device: torch.device):
    """(official TokenFlow, ours, config) on the same random weights."""
    from tok.core.weights import WeightSource
    from tok.tokenizers.tokenflow import TokenFlow, load_weights, preset

    config = _b_test_config() if name == "b-test" else preset(name)
    torch.manual_seed(0)
    official = _build_official(name, config, source)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial norm weights and biases (zero / one at init)
        for p in official.parameters():
            if p.ndim == 1:
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
    official.eval().requires_grad_(False)

    # Through tok's loader for official checkpoints, as a release `.pt` would go.
    state = official.state_dict()
    if config.teacher == "siglip_384" and not any(k.startswith("encoder_vqkd.vision_model.") for k in state):
        state = {k.replace("encoder_vqkd.", "encoder_vqkd.vision_model.", 1): v for k, v in state.items()}
    ours = TokenFlow(config)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "official.pt"
        torch.save({"model": state, "args": argparse.Namespace(teacher=config.teacher)}, path)
        load_weights(ours, WeightSource("explicit", path))
    return official.to(device), ours.eval().requires_grad_(False).to(device), config


def _scenes(n: int, side: int) -> torch.Tensor:
    """Smooth random scenes (low-frequency colour fields plus fine noise) in [-1, 1]."""
    generator = torch.Generator().manual_seed(2)
    low = torch.rand(n, 3, 6, 6, generator=generator)
    x = F.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)
    return ((x + 0.03 * torch.randn(x.shape, generator=generator)).clamp(0, 1) * 2 - 1).contiguous()


# ------------------------------------------------------------------------------------------------
def run_tokenflow(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from vs_official import autocast, print_header, time_ops

    from tok.core.quantize import flatten_scale_ids

    name = args.model.split("-", 1)[1]
    if name not in ("b", "xl", "b-test"):
        raise SystemExit(f"--model {args.model}: expected tokenflow-b, tokenflow-xl or tokenflow-b-test")
    official, ours, config = tokenflow_pair(name, Path(args.official_src).expanduser().resolve(), device)
    if args.ours_compile:
        ours.compile_networks(args.ours_compile)
    biggest = max(args.batches)
    images_all = _scenes(biggest, config.image_size)

    def official_encode(x, dtype=dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return official.encode(x)[2]  # ids (B, sum s^2)

    def official_decode(ids, dtype=dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return official.decode_code(ids)  # (semantic (B, g*g, T), image (B, 3, S, S))

    def our_encode(x, dtype=args.ours_dtype):
        with autocast(device, dtype):
            return ours.encode(x)  # Tokens, one (B, s, s) stream per scale

    def our_decode(ids, dtype=args.ours_dtype):
        with torch.inference_mode(), autocast(device, dtype):
            f_hat = ours.ids_to_features(ids)
            return ours.decode_semantic(f_hat), ours.decode_pixels(f_hat)

    # Parity in fp32 on the first (up to) two images.
    x = images_all[: min(2, biggest)].to(device)
    ids_ref = official_encode(x, torch.float32)
    ids = flatten_scale_ids(our_encode(x, torch.float32).streams)
    equal = (ids.cpu() == ids_ref.cpu()).float().mean().item()
    # Decode the official ids with ours, so the decode comparison does not depend on the encoder.
    sem_ref, img_ref = official_decode(ids_ref, torch.float32)
    sem, img = our_decode(ids_ref, torch.float32)
    diffs = {what: (out - ref).abs().max().item() / max(1.0, ref.abs().max().item())
             for what, out, ref in (("semantic", sem, sem_ref), ("image", img, img_ref))}
    print(f"parity (fp32, batch {x.shape[0]}, {ids.shape[1]} ids each): ids {equal:.2%} equal, decoded max |diff| / max(1, max |ref|): "
          f"semantic {diffs['semantic']:.2e}, image {diffs['image']:.2e} (tolerance 1e-4)", flush=True)
    if equal < 1 or max(diffs.values()) > 1e-4:
        raise SystemExit("outputs differ: not timing")
    ours.cpu_int8 = args.ours_int8
    ours.cpu_winograd_encoder = args.ours_winograd_encoder
    if dtype != torch.float32 or args.ours_dtype != torch.float32 or args.ours_int8 or args.ours_winograd_encoder:
        ids_ref_d = official_encode(x) if dtype != torch.float32 else ids_ref
        ids_d = flatten_scale_ids(our_encode(x).streams).cpu()
        # Ids per scale: a different id at one scale changes the residual of all finer ones.
        first = [int(torch.nonzero(row != ref).min()) if (row != ref).any() else None for row, ref in zip(ids_d, ids_ref.cpu())]
        sem_d, img_d = our_decode(ids_ref)
        ref_sem_d, ref_img_d = official_decode(ids_ref) if dtype != torch.float32 else (sem_ref, img_ref)
        print(f"tok in {args.ours_label} against the official in {args.dtype}: ids equal "
              f"{(ids_d == ids_ref_d.cpu()).float().mean().item():.2%} (against official fp32 "
              f"{(ids_d == ids_ref.cpu()).float().mean().item():.2%}; first differing position per image: {first}), "
              f"decoded from the official fp32 ids: image max |diff| {(img_d.float() - ref_img_d.float()).abs().max().item():.2e}, "
              f"semantic max |diff| {(sem_d.float() - ref_sem_d.float()).abs().max().item():.2e}", flush=True)

    print_header("images/s")
    rows = []
    for batch in args.batches:
        x = images_all[:batch].to(device)
        official_ids = official_encode(x)
        rows += time_ops({
            "encode": {"official": lambda x=x: official_encode(x), "tok": lambda x=x: our_encode(x)},
            "decode": {"official": lambda c=official_ids: official_decode(c), "tok": lambda c=official_ids: our_decode(c)},
        }, batch, batch, "images/s", args.repeats, device)
    return rows
