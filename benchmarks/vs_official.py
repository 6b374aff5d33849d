"""Side-by-side speed of tok and the official implementation on the same random weights (run by hand).

    # WavTokenizer: a checkout of jishengpeng/WavTokenizer (tested at 5cf440d)
    python benchmarks/vs_official.py --official-src ~/src/WavTokenizer --model wavtokenizer-75 --batches 1,8

    # FlexTok: a checkout of apple/ml-flextok (tested at 87d00cc); its extra deps on the path:
    #   pip install --target $DEPS mup hydra-core omegaconf antlr4-python3-runtime==4.9.3 --no-deps
    PYTHONPATH=$DEPS python benchmarks/vs_official.py --official-src ~/src/ml-flextok --model flextok-d12-d12

The official code is imported from `--official-src` only; the project contains none of it.
For each model the script

1. builds the official modules with seeded random weights, converts their state dict through
   tok's loader/converter into our model (strict: every key must match),
2. checks the outputs agree on the benchmark inputs (ids equal, decoded within the parity
   tolerance of the family's parity tests) and stops if they do not,
3. times encode and decode interleaved (official, tok, official, tok, ...) after one warm-up
   call each, with identical inputs, and prints medians, the ratio tok/official, the range of
   the per-round ratios (each round's official call over the tok call after it: how far the
   machine drifted during the row) and the peak memory of each call.

What is compared
----------------
* wavtokenizer-75 / wavtokenizer-40: the whole official inference path (`WavTokenizer.encode_infer`
  -> codes; `codes_to_features` + `decode` -> waveform) against `tok` `encode` / `decode`, on
  clips of `--seconds` (default 10 s) at 24 kHz. Throughput is the real-time factor (seconds
  of audio per wall second, summed over the batch).
* flextok-<preset>: the official model is assembled by hydra from the Hub config, which this
  script does not download. It times the components that carry the compute at the preset's
  sizes instead, images/s: the **encoder trunk** (official `FlexTransformer` with the
  `causal_last` mask over patches + registers) + FSQ on a shared linear read-out; one **decoder
  trunk pass** (official `FlexTransformer` with 2-way AdaLN over [patches, registers]); and the
  **VAE encode / decode** (the official `StableDiffusionVAE` wrapper, built from its own base
  config, posterior mode). A tokenize is VAE encode + encoder trunk; a detokenize is `steps`
  decoder passes + VAE decode (printed after the rows as seconds per image, when the rows it
  needs were timed: the preset's default steps, guided). Two more decoder rows: **guided** (classifier-free guidance, the
  official README's setting: a conditional and a null pass, as the official pipeline makes two
  model calls; in tok the null pass with its identical registers collapsed into one, see
  `FlexTokDecoder.collapse`) and a **`--kept-tokens` k decode** (the official runs all
  registers, the masked ones included; tok k + 1), and a k-token **encoder** row (the official
  runs all registers and keeps k; tok runs k, its registers being causal). By default the
  official trunks take one row per image and SDPA (the same math as tok); `--official-packed`
  runs them as the official model does, a batch packed by its `BlockWiseSequencePacker` into
  one sequence with a block-diagonal mask, and `--official-flex` (implies packed) with its
  default compiled flex_attention instead of the SDPA fallback.

Peak memory: on CPU, the peak increase of the process's resident set size (RSS, read from
/proc/self/statm every 2 ms by a sampling thread) over its value before the call, with glibc's
free memory returned to the system (`malloc_trim`) first, so memory freed by the previous call
is not silently reused (without glibc the figure is a lower bound); on CUDA,
`torch.cuda.max_memory_allocated` minus the allocation before the call.

Achieved throughput (`--flops`, or `--peak-tflops X|auto` for a share column): each side's
floating-point operations for one call are counted once per op and batch (torch's
FlopCounterMode on one extra eager call: matrix products, convolutions and attention, 2 per
multiply-add; elementwise work is not counted) and divided by the median time. `auto` takes
the device's practical peak as the best of five 4096^2 matrix products in tok's dtype. The
counts differ where one side does more work: the official XY encoder's fixed 30-s window, tok's
Winograd convolutions (`tok.nn.winograd`, about a quarter of a direct 3x3 convolution's FLOPs);
the `FLOPs tok/official` column shows it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ------------------------------------------------------------------------------------------------
# Measurement
# ------------------------------------------------------------------------------------------------
try:  # glibc keeps freed memory mapped; trimming before a call makes its RSS rise its own
    import ctypes

    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _malloc_trim = None


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakMemory:
    """Peak memory increase during a `with` block (CPU: sampled RSS; CUDA: allocator peak)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        if _malloc_trim is not None:
            _malloc_trim(0)
        self.base = _rss_bytes()
        self.peak = self.base
        self.running = True

        def sample():
            while self.running:
                self.peak = max(self.peak, _rss_bytes())
                time.sleep(0.002)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.delta = torch.cuda.max_memory_allocated() - self.base
            return
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss_bytes())
        self.delta = self.peak - self.base


@dataclass
class Timing:
    seconds: float  # median wall time per call
    peak_mib: float  # largest peak-memory increase over the timed calls
    calls: list[float]  # every timed call's wall time, in order


@dataclass
class FlopOptions:
    count: bool = False  # --flops: count each side's FLOPs once per op and batch (one extra eager call)
    peak_tflops: float | None = None  # --peak-tflops: the device's peak, for the share column


FLOPS = FlopOptions()
OPS: tuple[str, ...] = ()  # --ops: time only the ops whose names start with one of these


def measured_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """The best of 5 dense (4096 x 4096) matrix products in `dtype` on `device`: the practical peak
    that the share column compares against."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a, b = (torch.randn(4096, 4096, device=device, dtype=dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(5):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * 4096**3 / best / 1e12


def count_flops(fn: Callable[[], object]) -> float:
    """Floating-point operations of one call (matrix products, convolutions, attention; 2 per
    multiply-add), counted by torch's FlopCounterMode in eager mode (compiled parts too)."""
    from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula

    cpu_sdpa = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu  # SDPA's CPU kernel has no formula
    if cpu_sdpa not in flop_registry:
        @register_flop_formula(cpu_sdpa)
        def _(query_shape, key_shape, *args, **kwargs) -> int:
            batch, heads, queries, dim = query_shape
            return 4 * batch * heads * queries * key_shape[-2] * dim  # scores + weighted sum (masks not discounted)

    with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, Timing]:
    """Warm each function up once, then call them in turn `repeats` times (A, B, A, B, ...)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns.values():
        fn()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    peaks: dict[str, float] = {k: 0.0 for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            with PeakMemory(device) as mem:
                sync()
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], mem.delta / 2**20)
    return {k: Timing(statistics.median(times[k]), peaks[k], times[k]) for k in fns}


def time_ops(ops: dict[str, dict[str, Callable[[], object]]], batch: int, amount: float, unit: str,
             repeats: int, device: torch.device) -> list[dict]:
    """Time each op's {"official": fn, "tok": fn} pair interleaved and print one row per op;
    rates are `amount` (images, frames or seconds of audio in the batch) per second."""
    rows = []
    for op, fns in ops.items():
        if OPS and not op.startswith(OPS):
            continue
        result = time_interleaved(fns, repeats, device)
        # Each round's official time over tok's: calls next to each other share the machine's
        # state, so the spread of these shows how far the machine drifted during the row.
        rounds = [a / b for a, b in zip(result["official"].calls, result["tok"].calls)]
        rows.append({"op": op, "batch": batch, "unit": unit,
                     **{f"{k}_rate": amount / v.seconds for k, v in result.items()},
                     **{f"{k}_mib": v.peak_mib for k, v in result.items()},
                     "round_ratios": (min(rounds), max(rounds))})
        if FLOPS.count:
            counted = {k: count_flops(fn) for k, fn in fns.items()}
            rows[-1].update({f"{k}_tflops": counted[k] / result[k].seconds / 1e12 for k in fns})
            rows[-1]["flop_ratio"] = counted["tok"] / counted["official"]
        print_row(rows[-1])
    return rows


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


# ------------------------------------------------------------------------------------------------
# WavTokenizer
# ------------------------------------------------------------------------------------------------
def wavtokenizer_pair(variant: str, device: torch.device, audio: torch.Tensor):
    """(official WavTokenizer, ours) on the same random weights; the codebook is drawn from the
    encoder's latents of `audio` (so ids are spread over the codebook, as with trained weights)."""
    from decoder.feature_extractors import EncodecFeatures
    from decoder.heads import ISTFTHead
    from decoder.models import VocosBackbone
    from decoder.pretrained import WavTokenizer as OfficialWavTokenizer

    from tok.codecs.wavtokenizer import WavTokenizer, from_official, preset
    from tok.core.weights import load_strict

    config = preset(variant)
    torch.manual_seed(0)
    official = OfficialWavTokenizer(
        feature_extractor=EncodecFeatures(
            encodec_model="encodec_24khz", bandwidths=[6.6] * 4, train_codebooks=True, num_quantizers=1,
            dowmsamples=list(config.ratios), vq_bins=config.codebook_size, vq_kmeans=config.kmeans_iters,
        ),
        backbone=VocosBackbone(
            input_channels=config.latent_dim, dim=config.backbone_dim, intermediate_dim=config.intermediate_dim,
            num_layers=config.num_layers, adanorm_num_embeddings=config.adanorm_num_embeddings,
        ),
        head=ISTFTHead(dim=config.backbone_dim, n_fft=config.n_fft, hop_length=config.hop_length, padding="same"),
    ).eval()
    with torch.no_grad():
        encodec = official.feature_extractor.encodec
        latents = encodec.encoder(audio[:2, None])
        frames = latents.transpose(1, 2).reshape(-1, latents.shape[1])
        codebook = encodec.quantizer.vq.layers[0]._codebook
        pick = torch.randint(0, frames.shape[0], (config.codebook_size,))
        codebook.embed.copy_(frames[pick] + 0.5 * frames.std() * torch.randn_like(frames[pick]))
        codebook.embed_avg.copy_(codebook.embed)
        codebook.cluster_size.fill_(3.0)
        codebook.inited.fill_(1.0)  # no k-means on the first call
    state = {k: v.detach().clone() for k, v in official.state_dict().items()}
    ours = WavTokenizer(config).eval()
    load_strict(ours, from_official(state), "official WavTokenizer state dict")
    return official.to(device), ours.to(device), config


def run_wavtokenizer(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    sample_rate = 24000
    length = int(args.seconds * sample_rate)
    torch.manual_seed(1)
    t = torch.arange(length) / sample_rate
    biggest = max(args.batches)
    # Speech-like test signal: harmonics with a wandering pitch, plus noise; different per clip.
    clips = []
    for b in range(biggest):
        pitch = 110 + 40 * b + 20 * torch.sin(2 * torch.pi * 0.5 * t)
        phase = 2 * torch.pi * torch.cumsum(pitch, 0) / sample_rate
        clips.append(sum(0.3 / k * torch.sin(k * phase) for k in range(1, 6)) + 0.02 * torch.randn(length))
    audio_all = torch.stack(clips).float()
    official, ours, _ = wavtokenizer_pair(args.model.split("-", 1)[1], device, audio_all)
    if args.ours_compile:
        ours.compile_networks(args.ours_compile)
    bandwidth_id = torch.tensor([0], device=device)

    def official_encode(audio):
        with torch.inference_mode(), autocast(device, dtype):
            _, codes = official.encode_infer(audio, bandwidth_id=bandwidth_id)
        return codes  # (1, B, T)

    def official_decode(codes):
        with torch.inference_mode(), autocast(device, dtype):
            return official.decode(official.codes_to_features(codes), bandwidth_id=bandwidth_id)

    def our_encode(audio):
        with autocast(device, args.ours_dtype):
            return ours.encode(audio)

    def our_decode(tokens):
        with autocast(device, args.ours_dtype):
            return ours.decode(tokens)

    # Parity on the largest batch (fp32).
    audio = audio_all.to(device)
    codes = official_encode(audio) if dtype == torch.float32 else None
    with torch.inference_mode():
        if codes is None:
            _, codes = official.encode_infer(audio, bandwidth_id=bandwidth_id)
        reference = official.decode(official.codes_to_features(codes), bandwidth_id=bandwidth_id)
    tokens = ours.encode(audio)
    ours_ids, official_ids = tokens.streams[0][:, 0].cpu(), codes[0].cpu()
    differ = ours_ids != official_ids
    mismatched = differ.float().mean().item()
    # fp32 rounding differs between the two distance computations, so a frame almost equidistant
    # from two codewords may pick either: accept a differing id only if, in float64, its distance
    # is within 1e-5 (relative) of the official choice's.
    with torch.inference_mode():
        latents = official.feature_extractor.encodec.encoder(audio[:, None]).transpose(1, 2).double().cpu()
    embed = official.feature_extractor.encodec.quantizer.vq.layers[0]._codebook.embed.double().cpu()
    frames = latents[differ]
    gap_ours = (frames - embed[ours_ids[differ]]).pow(2).sum(-1)
    gap_official = (frames - embed[official_ids[differ]]).pow(2).sum(-1)
    worst = ((gap_ours - gap_official).abs() / gap_official.clamp_min(1e-12)).max().item() if differ.any() else 0.0
    ids_equal = worst <= 1e-5
    print(f"ids: {1 - mismatched:.2%} equal; differing ids are float ties (worst relative distance gap {worst:.1e})")
    # Decode the official ids with ours, so the decode comparison does not depend on id ties.
    tokens.streams[0] = codes[0][:, None].to(tokens.streams[0].dtype)
    decoded_diff = (ours.decode(tokens) - reference).abs().max().item()
    print(f"parity (fp32, batch {biggest}): ids agree: {ids_equal}, "
          f"decoded max |diff| {decoded_diff:.2e} (tolerance 1e-4 + 1e-4*|ref|)", flush=True)
    if not ids_equal or decoded_diff > 1e-4 + 1e-4 * reference.abs().max().item():
        raise SystemExit("outputs differ: not timing")
    # tok's bf16 timings use the switch users turn on (networks in bf16; the nearest-code search
    # and the ISTFT stay fp32), switched on only after the fp32 parity check.
    ours.cpu_bf16 = args.ours_dtype == torch.bfloat16
    ours.cpu_int8 = args.ours_int8
    if args.ours_dtype != dtype or args.ours_int8:
        agree = (our_encode(audio).streams[0][:, 0].cpu() == official_ids).float().mean().item()
        low = our_decode(tokens)
        print(f"tok in {args.ours_label} against the official in {args.dtype}: ids equal {agree:.2%}; decoding the "
              f"official ids: max |diff| {(low - reference).abs().max().item():.2e}, relative L2 error "
              f"{((low - reference).norm() / reference.norm()).item():.2e} (audio-level effect: see README)", flush=True)

    print_header("x real time")
    rows = []
    for batch in args.batches:
        audio = audio_all[:batch].to(device)
        official_codes = official_encode(audio)
        our_tokens = our_encode(audio)
        rows += time_ops({
            "encode": {"official": lambda a=audio: official_encode(a), "tok": lambda a=audio: our_encode(a)},
            "decode": {"official": lambda c=official_codes: official_decode(c), "tok": lambda t=our_tokens: our_decode(t)},
        }, batch, batch * args.seconds, "x real time", args.repeats, device)
    return rows


# ------------------------------------------------------------------------------------------------
# FlexTok (trunks + FSQ; see the module docstring)
# ------------------------------------------------------------------------------------------------
def run_flextok(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from functools import partial

    from flextok.model.postprocessors.seq_unpacking import SequenceUnpacker
    from flextok.model.preprocessors.flex_seq_packing import BlockWiseSequencePacker, expand_emb_per_subseq
    from flextok.model.trunks.transformers import FlexTransformer
    from flextok.regularizers.quantize_fsq import FSQ
    from flextok.vae_wrapper import StableDiffusionVAE

    from tok.core.quantize import FSQQuantizer
    from tok.core.weights import load_strict
    from tok.nn.attention import PrefixCausal
    from tok.nn.transformer import AdaLNBlock, Block
    from tok.tokenizers.flextok import preset
    from tok.tokenizers.flextok.model import MUP_SCALE, VAE, FlexTokDecoder, FlexTokEncoder, Transformer, last_key_repeated

    config = preset(args.model.split("-", 1)[1])
    patches, registers = config.num_patches, config.num_registers
    length = patches + registers
    levels = list(config.fsq_levels)
    torch.manual_seed(0)
    args.official_packed |= args.official_flex  # flex_attention takes the packer's BlockMask, not a dense mask

    def no_flex(module):
        # The official trunk defaults to flex_attention; its SDPA path takes the same mask.
        for m in module.modules():
            if hasattr(m, "use_flex_attention"):
                m.use_flex_attention = args.official_flex
        return module

    def randomize(module):
        with torch.no_grad():
            for p in module.parameters():
                p.normal_(std=0.02)
        return module

    official_enc = no_flex(randomize(FlexTransformer(
        "x", "y", dim=config.encoder_dim, depth=config.encoder_depth, head_dim=config.head_dim, block_mask_read_key="mask"
    ))).eval()
    official_dec = no_flex(randomize(FlexTransformer(
        "x", "y", dim=config.decoder_dim, depth=config.decoder_depth, head_dim=config.head_dim,
        adaLN_emb_read_key="c", adaLN_packing_fn_read_key="pack", adaLN_expansion=2, block_mask_read_key="mask",
    ))).eval()
    official_fsq = FSQ("z", "q", "ids", levels=levels).eval()
    our_enc = Transformer([Block(config.encoder_dim, config.head_dim, attn_scale=MUP_SCALE / config.head_dim)
                           for _ in range(config.encoder_depth)]).eval()
    our_dec = Transformer([AdaLNBlock(config.decoder_dim, config.head_dim, attn_scale=MUP_SCALE / config.head_dim, num_segments=2)
                           for _ in range(config.decoder_depth)]).eval()
    load_strict(our_enc, official_enc.state_dict(), "official encoder trunk")
    load_strict(our_dec, official_dec.state_dict(), "official decoder trunk")
    our_fsq = FSQQuantizer(tuple(levels))
    readout = torch.nn.Linear(config.encoder_dim, len(levels)).eval()  # shared, stands in for enc_to_latents
    # The VAE: the official wrapper builds diffusers' AutoencoderKL from its own base config
    # without the Hub when no path is given; ours takes its weights (posterior mode in both).
    official_vae = randomize(StableDiffusionVAE("img", "z", "z", "rec", latent_channels=config.vae.latent_channels,
                                                scaling_factor=config.vae.scaling_factor, sample_posterior=False)).eval()
    our_vae = VAE(config.vae).eval()
    load_strict(our_vae, official_vae.state_dict(), "official VAE")
    for m in (official_enc, official_dec, official_vae, our_enc, our_dec, our_vae, readout):
        m.to(device).requires_grad_(False)
    if args.ours_compile:  # called block by block here, so each block is compiled (FlexTok.compile_networks: whole trunks)
        from torch._inductor import list_mode_options

        for block in (*our_enc.blocks, *our_dec.blocks):
            block.compile(options={**list_mode_options(args.ours_compile), "freezing": True})
    mask = FlexTokEncoder.attention_mask(patches, registers).to(device)
    pack = partial(expand_emb_per_subseq, packed_shapes_list=[[torch.Size([patches]), torch.Size([registers])]])

    # --official-packed: a batch runs as the official model runs it, packed by its own
    # BlockWiseSequencePacker into one [1, N, D] sequence (N = B*L padded to a multiple of 128)
    # with a block-diagonal mask (materialized for SDPA, or a flex BlockMask), then unpacked.
    def official_packer(mode, emb_key=None):
        return BlockWiseSequencePacker(["p", "r"], "x", "mask", "inner", "outer", mask_mode=mode, pad_to_multiple=128,
                                       emb_packing_fn_write_key=emb_key, per_subseq_embs=emb_key is not None,
                                       return_materialized_mask=not args.official_flex)

    enc_packer, dec_packer = official_packer("causal_last"), official_packer("full", "pack")
    unpacker = SequenceUnpacker("y", ["p", "r"], "inner", "outer")

    def official_packed(trunk, packer, x, extra=None):
        rows = x.unsqueeze(1)  # the official model's inputs are lists of [1, n, D] tensors, one per image
        data = packer({"p": [r[:, :patches] for r in rows], "r": [r[:, patches:] for r in rows], **(extra or {})})
        data = unpacker(trunk(data))
        return torch.cat([torch.cat(pair, dim=1) for pair in zip(data["p"], data["r"])])

    def official_tokenize(x):
        with torch.inference_mode(), autocast(device, dtype):
            if args.official_packed:
                y = official_packed(official_enc, enc_packer, x)
            else:
                y = official_enc({"x": x, "mask": mask})["y"]
            z = readout(y[:, patches:]).float() * 3
        return official_fsq.forward_z(z)[1]

    def our_tokenize(x, dtype=args.ours_dtype, kept=registers):
        x = x[:, : patches + kept]  # a k-token encode runs k registers (causal: FlexTokEncoder.forward)
        with torch.inference_mode(), autocast(device, dtype):
            for block in our_enc.blocks:
                x = block(x, PrefixCausal(patches))  # the same mask, as tok's encoder runs it
            z = readout(x[:, patches:]).float() * 3
        return our_fsq(z).ids

    def official_step(x, cond):
        with torch.inference_mode(), autocast(device, dtype):
            if args.official_packed:
                return official_packed(official_dec, dec_packer, x, {"c": cond})
            # By default rows stay separate ([B, L, D], the same math without the packed
            # sequence's (B*L)^2 mask), so the official AdaLN expansion is applied per row and
            # reshaped back.
            return official_dec({"x": x, "c": cond, "pack": partial(batched_pack, batch=x.shape[0]), "mask": None})["y"]

    def our_step(x, cond, dtype=args.ours_dtype, kept=registers):
        # kept < registers: a kept-token decode, the masked registers collapsed into one
        # (FlexTokDecoder.collapse; the official always runs all of them). Returns the patches.
        x, repeats = FlexTokDecoder.collapse(x, patches + kept)
        key_bias = last_key_repeated(x, repeats)
        with torch.inference_mode(), autocast(device, dtype):
            for block in our_dec.blocks:
                x = block(x, cond, (patches, x.shape[1] - patches), key_bias)
            return x[:, :patches]

    def official_guided_step(x, cond):  # guidance: the official pipeline's conditional and null model calls
        return torch.cat([official_step(x, cond), official_step(x, cond)])

    def our_guided_step(x, cond, dtype=args.ours_dtype):  # the null pass with its registers collapsed
        return torch.cat([our_step(x, cond, dtype), our_step(x, cond, dtype, kept=0)])

    def official_vae_encode(images):
        with torch.inference_mode(), autocast(device, dtype):
            return official_vae.encode({"img": images})["z"]

    def our_vae_encode(images, dtype=args.ours_dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return our_vae.encode(images)

    def official_vae_decode(latents):
        with torch.inference_mode(), autocast(device, dtype):
            return official_vae.decode({"z": latents})["rec"]

    def our_vae_decode(latents, dtype=args.ours_dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return our_vae.decode(latents)

    def batched_pack(emb, batch):
        return pack.func(emb, packed_shapes_list=[[torch.Size([patches]), torch.Size([registers])]] * batch).reshape(batch, length, -1)

    biggest = max(args.batches)
    x_enc = torch.randn(biggest, length, config.encoder_dim, device=device)
    x_dec = torch.randn(biggest, length, config.decoder_dim, device=device)
    cond = torch.randn(biggest, config.decoder_dim, device=device)
    images = torch.rand(biggest, 3, config.image_size, config.image_size, device=device) * 2 - 1
    latents = torch.randn(biggest, config.vae.latent_channels, config.latent_size, config.latent_size, device=device)
    # Parity with both sides in --dtype; tok's own dtype (if different) is compared after it.
    with torch.inference_mode():
        ids_ref, ids = official_tokenize(x_enc[:2]), our_tokenize(x_enc[:2], dtype)
        ids_kept = our_tokenize(x_enc[:2], dtype, args.kept_tokens)
        ref, out = official_step(x_dec[:2], cond[:2])[:, :patches], our_step(x_dec[:2], cond[:2], dtype)
        # The collapsed passes against the official on inputs whose masked registers are identical.
        x_masked = x_dec[:2].clone()
        x_masked[:, patches + args.kept_tokens:] = x_masked[:, -1:]
        ref_kept, kept_out = official_step(x_masked, cond[:2])[:, :patches], our_step(x_masked, cond[:2], dtype, args.kept_tokens)
        z_ref, z = official_vae_encode(images[:1]), our_vae_encode(images[:1], dtype)
        rec_ref, rec = official_vae_decode(latents[:1]), our_vae_decode(latents[:1], dtype)
    ids_equal = torch.equal(ids_ref.cpu(), ids.cpu()) and torch.equal(ids_ref[:, : args.kept_tokens].cpu(), ids_kept.cpu())
    diffs = {name: (a.float() - b.float()).abs().max().item() / max(1.0, a.abs().max().item())
             for name, a, b in (("decoder trunk", ref, out), (f"collapsed {args.kept_tokens}-token pass", ref_kept, kept_out),
                                ("VAE latents", z_ref, z), ("VAE image", rec_ref, rec))}
    print(f"parity ({args.dtype}, batch 2; VAE batch 1): FSQ ids equal: {ids_equal} (mismatched {(ids_ref != ids).float().mean().item():.2%}), "
          + ", ".join(f"{name} max |diff| {d:.2e}" for name, d in diffs.items()) + " (relative to max(1, max |official|))", flush=True)
    # Compiled flex_attention rounds differently from SDPA: a few FSQ values then fall on the other
    # side of a rounding boundary (float ties; the official's own SDPA path gives tok's ids).
    ids_ok = ids_equal or (args.official_flex and (ids_ref != ids).float().mean().item() <= 0.01)
    if dtype == torch.float32 and (not ids_ok or max(diffs.values()) > 1e-4):
        raise SystemExit("outputs differ: not timing")
    if args.ours_int8:  # the decoder trunk's linears, as `FlexTok.cpu_int8` switches them (not the encoder's)
        from tok.nn.int8 import use_int8

        use_int8(our_dec)
    if args.ours_winograd_encoder:  # as `FlexTok.cpu_winograd_encoder` switches it
        from tok.nn.winograd import use_winograd

        use_winograd(our_vae.vae.encoder)
        z = our_vae_encode(images[:1])
        print(f"tok with the Winograd VAE encoder: latents max |diff| {(z.float() - z_ref.float()).abs().max().item():.2e} "
              f"(relative to max |official| {z_ref.abs().max().item():.2f}; id effect on trained weights: see README)", flush=True)
    if args.ours_dtype != dtype or args.ours_int8:
        with torch.inference_mode():
            ids, out = our_tokenize(x_enc[:2]), our_step(x_dec[:2], cond[:2])
        print(f"tok in {args.ours_label} against the official in {args.dtype}: FSQ ids equal {(ids_ref == ids).float().mean().item():.2%}, "
              f"decoder trunk max |diff| {(ref.float() - out.float()).abs().max().item():.2e} (image-level effect: see README)", flush=True)

    print_header("images/s")
    rows = []
    for batch in args.batches:
        xe, xd, c = x_enc[:batch], x_dec[:batch], cond[:batch]
        rows += time_ops({
            "enc trunk+FSQ": {"official": lambda x=xe: official_tokenize(x), "tok": lambda x=xe: our_tokenize(x)},
            f"enc trunk, {args.kept_tokens} tokens": {"official": lambda x=xe: official_tokenize(x)[:, :args.kept_tokens],
                                                      "tok": lambda x=xe: our_tokenize(x, kept=args.kept_tokens)},
            "dec trunk pass": {"official": lambda x=xd, c=c: official_step(x, c), "tok": lambda x=xd, c=c: our_step(x, c)},
            "dec pass, guided": {"official": lambda x=xd, c=c: official_guided_step(x, c), "tok": lambda x=xd, c=c: our_guided_step(x, c)},
            f"dec pass, {args.kept_tokens} tokens": {"official": lambda x=xd, c=c: official_step(x, c),
                                                     "tok": lambda x=xd, c=c: our_step(x, c, kept=args.kept_tokens)},
            "VAE encode": {"official": lambda x=images[:batch]: official_vae_encode(x), "tok": lambda x=images[:batch]: our_vae_encode(x)},
            "VAE decode": {"official": lambda z=latents[:batch]: official_vae_decode(z), "tok": lambda z=latents[:batch]: our_vae_decode(z)},
        }, batch, batch, "images/s", args.repeats, device)
        print_pipelines([r for r in rows if r["batch"] == batch], config.decode_steps)
    return rows


def print_pipelines(rows: list[dict], steps: int) -> None:
    """FlexTok's whole tokenize (VAE encode + encoder trunk) and a detokenize of `steps` guided
    decoder steps (the official README's setting) + VAE decode, in seconds per image, from the
    rows' rates, where those were timed."""
    rate = {r["op"]: r for r in rows}
    for name, parts in (("tokenize", {"VAE encode": 1, "enc trunk+FSQ": 1}),
                        (f"detokenize, {steps} guided steps", {"dec pass, guided": steps, "VAE decode": 1})):
        if all(op in rate for op in parts):
            official, ours = (sum(n / rate[op][f"{side}_rate"] for op, n in parts.items()) for side in ("official", "tok"))
            print(f"{name}: official {official:.2f} s per image, tok {ours:.2f} s, tok/official {official / ours:.2f}x", flush=True)


# ------------------------------------------------------------------------------------------------
def print_header(unit: str) -> None:
    flops = f" {'official TFLOP/s':>16} {'tok TFLOP/s':>11} {'FLOPs tok/official':>18}" if FLOPS.count else ""
    share = f" {'tok % of peak':>13}" if FLOPS.count and FLOPS.peak_tflops else ""
    print(f"{'op':<20} {'batch':>5} {'official ' + unit:>22} {'tok ' + unit:>18} {'tok/official':>12} {'per round':>11} "
          f"{'official peak MiB':>17} {'tok peak MiB':>12}{flops}{share}", flush=True)


def print_row(row: dict) -> None:
    flops = (f" {row['official_tflops']:>16.4f} {row['tok_tflops']:>11.4f} {row['flop_ratio']:>18.2f}"
             if "tok_tflops" in row else "")
    share = f" {100 * row['tok_tflops'] / FLOPS.peak_tflops:>12.1f}%" if "tok_tflops" in row and FLOPS.peak_tflops else ""
    low, high = row["round_ratios"]
    print(f"{row['op']:<20} {row['batch']:>5} {row['official_rate']:>22.3f} {row['tok_rate']:>18.3f} "
          f"{row['tok_rate'] / row['official_rate']:>11.2f}x {f'{low:.2f}-{high:.2f}':>11} "
          f"{row['official_mib']:>17.0f} {row['tok_mib']:>12.0f}{flops}{share}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-src", required=True, type=Path, help="local checkout of the official repository")
    parser.add_argument("--model", required=True,
                        help="wavtokenizer-75 | wavtokenizer-40 | flextok-d12-d12 | flextok-d18-d18 | flextok-d18-d28 | "
                             "tokenflow-b | tokenflow-xl | tokenflow-b-test | omnitokenizer-<VQ preset>, e.g. omnitokenizer-imagenet-k600 | "
                             "xy-tokenizer (xy-tokenizer-small / -tiny for quick checks)")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="autocast dtype for both (parity is always checked)")
    parser.add_argument("--ours-dtype", choices=["float32", "bfloat16"],
                        help="autocast dtype for tok only (default: --dtype), e.g. tok's CPU bf16 path against the official fp32")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per implementation (median reported)")
    parser.add_argument("--seconds", type=float, default=10.0, help="WavTokenizer / XY-Tokenizer clip length")
    parser.add_argument("--frames", type=int, help="OmniTokenizer video clip length (default: the preset's 17; 1: images only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ours-compile", nargs="?", const="default", metavar="MODE",
                        help="tok with `model.compile_networks(MODE)` (torch.compile with inductor freezing; MODE e.g. "
                             "reduce-overhead for CUDA graphs, default: default); the warm-up pays the compilation")
    parser.add_argument("--ours-int8", action="store_true",
                        help="tok with `model.cpu_int8 = True` (dynamic int8 Linear / Conv1d on CPU), switched on after the fp32 parity check")
    parser.add_argument("--ours-winograd-encoder", action="store_true",
                        help="FlexTok, TokenFlow: tok with `model.cpu_winograd_encoder = True` (Winograd 3x3 convolutions in the "
                             "convolutional encoder on CPU), switched on after the fp32 parity check")
    parser.add_argument("--flops", action="store_true",
                        help="count each side's FLOPs (one extra eager call per op and batch) and print the achieved TFLOP/s")
    parser.add_argument("--peak-tflops",
                        help="the device's peak TFLOP/s in --ours-dtype (e.g. ~790 for an H100's dense bf16), or `auto` to measure "
                             "a dense matrix product first; prints tok's share of it (implies --flops)")
    parser.add_argument("--official-flex", action="store_true",
                        help="FlexTok: let the official trunk use flex_attention (compiled; its default) instead of its SDPA path")
    parser.add_argument("--kept-tokens", type=int, default=16,
                        help="FlexTok: the token count of the k-token decoder pass row (the official runs all registers)")
    parser.add_argument("--official-packed", action="store_true",
                        help="FlexTok: run the official trunks on a batch as the official model does, packed into one "
                             "sequence with a block-diagonal mask (default: one row per image, the same math without it)")
    parser.add_argument("--ops", help="comma-separated: time only the ops whose names start with one of these, e.g. 'dec pass,VAE'")
    args = parser.parse_args()
    global OPS
    OPS = tuple(args.ops.split(",")) if args.ops else ()
    # The family modules import this one by name: let them share this instance (and its FLOPS).
    sys.modules.setdefault("vs_official", sys.modules[__name__])
    args.batches = [int(b) for b in args.batches.split(",")]
    FLOPS.count = args.flops or args.peak_tflops is not None
    source = args.official_src.expanduser().resolve()
    if not source.is_dir():
        raise SystemExit(f"--official-src {source}: not a folder")
    sys.path.insert(0, str(source))
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    args.ours_dtype = getattr(torch, args.ours_dtype or args.dtype)
    args.ours_label = "int8" if args.ours_int8 else str(args.ours_dtype)[6:]
    if args.ours_winograd_encoder:
        if not args.model.startswith(("flextok", "tokenflow")):
            parser.error(f"--ours-winograd-encoder: {args.model} has no encoder with 3x3 convolutions (FlexTok, TokenFlow have)")
        args.ours_label += " + Winograd encoder"
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"model {args.model}, device {device}, dtype {args.dtype} (tok: {args.ours_label}{f', compiled ({args.ours_compile})' if args.ours_compile else ''}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    if args.peak_tflops == "auto":
        FLOPS.peak_tflops = measured_peak_tflops(device, args.ours_dtype)
        print(f"measured peak: {FLOPS.peak_tflops:.4f} TFLOP/s ({str(args.ours_dtype)[6:]} 4096^2 matrix product on {device})", flush=True)
    elif args.peak_tflops is not None:
        FLOPS.peak_tflops = float(args.peak_tflops)
    if args.model.startswith("wavtokenizer-"):
        run_wavtokenizer(args, device, dtype)
    elif args.model.startswith("flextok-"):
        run_flextok(args, device, dtype)
    elif args.model.startswith("tokenflow-"):
        from vs_official_tokenflow import run_tokenflow

        run_tokenflow(args, device, dtype)
    elif args.model.startswith("omnitokenizer-"):
        from vs_official_omnitokenizer import run_omnitokenizer

        run_omnitokenizer(args, device, dtype)
    elif args.model.startswith("xy-tokenizer"):
        from vs_official_xy import run_xy_tokenizer

        run_xy_tokenizer(args, device, dtype)
    else:
        raise SystemExit(f"unknown --model {args.model}")


if __name__ == "__main__":
    main()
