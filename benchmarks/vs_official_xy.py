"""XY-Tokenizer side by side with the official implementation (dispatched from `vs_official.py`).

    # a checkout of gyt1145028706/XY-Tokenizer (tested at 5df5609); its extra deps on the path
    # (it also imports librosa, torchaudio, scipy, einops and yaml):
    #   pip install --target $DEPS transformers tokenizers --no-deps
    PYTHONPATH=$DEPS python benchmarks/vs_official.py --official-src ~/src/XY-Tokenizer --model xy-tokenizer --batches 1,8

The official code is imported from `--official-src` only (vs_official.py puts it on sys.path);
the project contains none of it. Like the other families, the script builds the official
`XY_Tokenizer` with seeded random weights, converts its state dict into tok's model through the
family's loader (`weights.load_state`: official key layout, strict), checks parity in fp32 and
stops if it fails, then times encode and decode interleaved.

What is compared
----------------
* xy-tokenizer (= xy-tokenizer-official): the release configuration, read from the checkout's
  `config/xy_tokenizer_config.yaml` (tok's `official` preset must load it strictly, so the two
  cannot drift apart). xy-tokenizer-small / xy-tokenizer-tiny: tok's small presets with the
  official 30-s position tables (the official feature extractor always pads to 30 s), for quick
  checks.
* The whole public inference path on clips of `--seconds` (default 10 s) at 16 kHz: official
  `XY_Tokenizer.encode(wav_list)` -> codes (NumPy log-mel of a 30-s window, both towers, RVQ) and
  `XY_Tokenizer.decode(codes_list)` -> waveform, against tok `encode(wav, pad_tail=False)` (the
  official floor(L / 1280) code count) / `decode`. Both cut long audio into 30-s windows advancing
  by 20 s, but the official code does so above 20 s and tok only above 30 s, so keep `--seconds`
  at most 20 (or above 30) for like-for-like work. The official encoder always runs a full 30-s
  window whatever the clip length; tok runs the clip's own frames: that difference is part of what
  is measured. Throughput is the real-time factor (seconds of audio per wall second, summed over
  the batch).

Random weights: PyTorch's default initialisation of the official modules (seed 0); the 8
codebooks are drawn, level by level, from the residuals of the encoder's latents on the first two
test clips plus noise of the residuals' size (so ids are spread over the codebooks and each level
still has a residual well above fp32 round-off, as with trained weights), and marked initialised,
so neither side runs k-means.

Precision: `--dtype` autocasts both sides. The official RVQ only switches autocast off on CUDA,
so on CPU in bf16 its code search runs in bf16; tok's log-mel, quantizer (autocast off, inputs
cast to float32) and iSTFT head always run in fp32. `--ours-dtype bfloat16` wraps tok's calls in
a CPU/CUDA autocast (on CPU the same as the model's `cpu_bf16` switch) and reports the share of
ids equal to the official fp32 ones.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
def official_params(c) -> dict:
    """Official `generator_params` for a tok `XYTokenizerConfig` (the keys of the release YAML;
    for the `official` preset this dict equals the checkout's config/xy_tokenizer_config.yaml)."""
    mel = {"num_mel_bins": c.n_mels, "sampling_rate": c.sample_rate, "hop_length": c.hop_length, "stride_size": 2,
           "kernel_size": 3, "d_model": c.dim, "scale_embedding": False, "max_audio_seconds": c.max_seconds,
           "activation_function": "gelu"}
    heads = {"encoder_attention_heads": c.num_heads, "encoder_ffn_dim": c.ffn_dim}
    wide = c.dim * c.downsample

    def adapter(input_dim, output_dim, positions, layers):
        return {"input_dim": input_dim, "output_dim": output_dim, "d_model": c.dim, "max_source_positions": positions,
                "encoder_layers": layers, **heads}

    return {
        "sample_rate": c.sample_rate,
        "feature_extractor_kwargs": {
            "chunk_length": 30, "feature_size": c.n_mels, "hop_length": c.hop_length, "n_fft": c.n_fft,
            "n_samples": 30 * c.sample_rate, "nb_max_frames": 30 * c.sample_rate // c.hop_length, "padding_side": "right",
            "padding_value": 0.0, "return_attention_mask": False, "sampling_rate": c.sample_rate,
        },
        "semantic_encoder_kwargs": {**mel, "encoder_layers": c.semantic_layers, **heads},
        "semantic_encoder_adapter_kwargs": adapter(c.dim, c.dim, c.positions_50hz, c.semantic_adapter_layers),
        "acoustic_encoder_kwargs": {**mel, "encoder_layers": c.acoustic_layers, **heads},
        "pre_rvq_adapter_kwargs": adapter(2 * c.dim, c.dim, c.positions_50hz, c.pre_rvq_layers),
        "downsample_kwargs": {"d_model": c.dim, "avg_pooler": c.downsample},
        "quantizer_kwargs": {"input_dim": wide, "rvq_dim": c.rvq_dim, "output_dim": wide, "num_quantizers": c.num_quantizers,
                             "codebook_size": c.codebook_size, "codebook_dim": c.rvq_dim, "quantizer_dropout": 0.0, "commitment": 1},
        "post_rvq_adapter_kwargs": adapter(wide, wide, c.window_frames, c.post_rvq_layers),
        "upsample_kwargs": {"d_model": c.dim, "stride": c.downsample},
        "acoustic_decoder_kwargs": {**mel, "decoder_layers": c.decoder_layers, "decoder_attention_heads": c.num_heads,
                                    "decoder_ffn_dim": c.ffn_dim},
        "vocos_kwargs": {"input_channels": c.n_mels, "dim": c.vocos_dim, "intermediate_dim": c.vocos_intermediate_dim,
                         "num_layers": c.vocos_layers, "n_fft": c.vocos_n_fft, "hop_size": c.vocos_hop_length, "padding": "same"},
    }


def model_config(name: str, official_src: Path):
    """(tok config, official generator_params) for `--model`."""
    from tok.codecs.xy_tokenizer import preset

    variant = name.removeprefix("xy-tokenizer").removeprefix("-") or "official"
    if variant == "official":
        import yaml

        with open(Path(official_src) / "config" / "xy_tokenizer_config.yaml") as f:
            return preset("official"), yaml.safe_load(f)["generator_params"]
    config = preset(variant, max_seconds=30)  # the official extractor always pads to 30 s
    return config, official_params(config)


def xy_pair(config, params: dict, audio: torch.Tensor, lengths: torch.Tensor):
    """(official XY_Tokenizer, ours) on the same random weights, codebooks drawn from `audio`'s latents."""
    from xy_tokenizer.model import XY_Tokenizer

    from tok.codecs.xy_tokenizer import XYTokenizer
    from tok.codecs.xy_tokenizer.weights import load_state

    torch.manual_seed(0)
    official = XY_Tokenizer(params).eval()
    ours = XYTokenizer(config).eval()
    # First conversion only to compute latents with the random encoder weights.
    load_state(ours, official.state_dict(), "official XY_Tokenizer state dict")
    with torch.no_grad():
        z, _ = ours.encode_latents(audio, lengths)
        latent = ours.quantizer.input_proj(z).transpose(1, 2)  # (B, T, rvq_dim)
        frames = torch.div(lengths, config.frame_samples, rounding_mode="floor")
        valid = torch.arange(latent.shape[1])[None] < frames[:, None]
        residual = latent[valid].double()  # (N, rvq_dim)
        g = torch.Generator().manual_seed(2)
        for vq in official.quantizer.quantizers:
            pick = torch.randint(0, residual.shape[0], (config.codebook_size,), generator=g)
            noise = torch.randn(config.codebook_size, residual.shape[1], generator=g, dtype=torch.float64)
            # Noise as large as the residuals: each level removes a modest share of the residual
            # (smaller noise collapses it geometrically, leaving later levels at fp32 round-off).
            book = residual[pick] + residual.std() * noise
            vq.codebook.copy_(book.float())
            vq.embed_avg.copy_(vq.codebook)
            vq.cluster_size.fill_(3.0)
            vq.inited.fill_(True)  # no k-means on the first call
            residual = residual - book[torch.cdist(residual, book).argmin(1)]
    # The conversion under test: official state dict -> tok, strict.
    load_state(ours, official.state_dict(), "official XY_Tokenizer state dict")
    return official, ours


def worst_tie_gap(z_e: torch.Tensor, official_ids: torch.Tensor, our_ids: torch.Tensor, books: list[torch.Tensor]) -> float:
    """Largest relative distance gap, in float64, between the official id and ours at each frame's
    first differing RVQ level (later levels of that frame quantize a different residual).

    z_e (B, T, D) official quantizer input, ids (B, Q, T), books Q x (K, D). 0 if all ids agree.
    """
    residual = z_e.double()
    diverged = torch.zeros(official_ids.shape[0], official_ids.shape[2], dtype=torch.bool)
    worst = 0.0
    for k, book in enumerate(books):
        book = book.double()
        a, b = official_ids[:, k], our_ids[:, k]
        new = (a != b) & ~diverged
        if new.any():
            r = residual[new]
            gap_official = (r - book[a[new]]).pow(2).sum(-1)
            gap_ours = (r - book[b[new]]).pow(2).sum(-1)
            worst = max(worst, ((gap_ours - gap_official).abs() / gap_official.clamp_min(1e-12)).max().item())
        diverged |= a != b
        residual = residual - book[a]
    return worst


# ------------------------------------------------------------------------------------------------
# Benchmark
# ------------------------------------------------------------------------------------------------
def run_xy_tokenizer(args, device: torch.device, dtype: torch.dtype) -> list[dict]:
    from vs_official import autocast, print_header, time_ops

    config, params = model_config(args.model, args.official_src)
    sample_rate = config.sample_rate
    length = int(args.seconds * sample_rate)
    if length < config.frame_samples:
        raise SystemExit(f"--seconds {args.seconds}: shorter than one code frame ({config.frame_samples} samples)")
    torch.manual_seed(1)
    t = torch.arange(length) / sample_rate
    biggest = max(args.batches)
    # Speech-like test signal: harmonics with a wandering pitch and a syllable-rate envelope,
    # plus noise; different per clip.
    clips = []
    for b in range(biggest):
        pitch = 110 + 40 * b + 20 * torch.sin(2 * torch.pi * 0.7 * t)
        phase = 2 * torch.pi * torch.cumsum(pitch, 0) / sample_rate
        envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 4 * t) ** 2
        clips.append(envelope * sum(0.2 / k * torch.sin(k * phase) for k in range(1, 12)) + 0.02 * torch.randn(length))
    audio_all = torch.stack(clips).float()
    lengths_all = torch.full((biggest,), length)
    official, ours = xy_pair(config, params, audio_all[:2], lengths_all[:2])
    official, ours = official.to(device), ours.to(device)
    if args.ours_compile:
        ours.compile_networks(args.ours_compile)

    def official_encode(audio, dtype=dtype):
        with torch.inference_mode(), autocast(device, dtype):
            return official.encode(list(audio), device=device)["codes_list"]  # B x (Q, T)

    def official_decode(codes_list):
        with torch.inference_mode(), autocast(device, dtype):
            return official.decode(codes_list, device=device)["syn_wav_list"]  # B x (T * 1280,)

    # tok's precision: an autocast around its calls (the log-mel, the quantizer and the iSTFT head
    # switch it off inside and run in fp32).
    def our_encode(audio, dtype=args.ours_dtype):
        with autocast(device, dtype):
            return ours.encode(audio, pad_tail=False)

    def our_decode(tokens, dtype=args.ours_dtype):
        with autocast(device, dtype):
            return ours.decode(tokens)

    # Parity on the largest batch, both sides in fp32. The official quantizer input is recorded
    # to tell float ties from real mismatches.
    audio = audio_all.to(device)
    captured = []
    hook = official.quantizer.input_proj.register_forward_hook(lambda m, i, out: captured.append(out.detach()))
    codes_list = official_encode(audio, torch.float32)
    hook.remove()
    with torch.inference_mode():
        reference = torch.stack(official.decode(codes_list, device=device)["syn_wav_list"]).cpu()
    tokens = our_encode(audio, torch.float32)
    official_ids, ours_ids = torch.stack(codes_list).cpu(), tokens.streams[0].cpu()
    if ours_ids.shape != official_ids.shape:
        raise SystemExit(f"id shapes differ: tok {tuple(ours_ids.shape)}, official {tuple(official_ids.shape)}")
    # fp32 rounding differs between the two distance computations, so a residual almost
    # equidistant from two codewords may pick either: accept a differing id only if, in float64,
    # its distance is within 1e-5 (relative) of the official choice's.
    # The official `encode` keeps the first 20 s of codes of each 30-s window it runs.
    steps, keep = official_ids.shape[2], 20 * sample_rate // config.frame_samples
    z_e = torch.cat([c[:, :, :keep] for c in captured], dim=2)[:, :, :steps].transpose(1, 2).cpu()
    books = [vq.codebook.cpu() for vq in official.quantizer.quantizers]
    worst = worst_tie_gap(z_e, official_ids, ours_ids, books)
    ids_equal = worst <= 1e-5
    same = (ours_ids == official_ids).float().mean().item()
    print(f"ids: {same:.2%} equal ({steps} frames x {config.num_quantizers} codebooks x {biggest} clips); "
          f"worst relative distance gap at a differing id {worst:.1e} (float tie if <= 1e-5)")
    # Decode the official ids with ours, so the decode comparison does not depend on id ties.
    official_tokens = replace(tokens, streams=[official_ids.to(tokens.streams[0].dtype)])
    decoded = our_decode(official_tokens, torch.float32)[:, : reference.shape[1]]
    diff = (decoded - reference).abs()
    # The family's parity-test tolerance (test_xy_parity.py): |diff| <= 1e-4 + 1e-3 |ref|.
    within = bool((diff <= 1e-4 + 1e-3 * reference.abs()).all())
    print(f"parity (fp32, batch {biggest}): ids agree: {ids_equal}, decoded max |diff| {diff.max().item():.2e} "
          f"(reference max |x| {reference.abs().max().item():.2e}; tolerance 1e-4 + 1e-3*|ref|: {within})", flush=True)
    if not ids_equal or not within:
        raise SystemExit("outputs differ: not timing")
    ours.cpu_int8 = args.ours_int8
    if args.ours_dtype != torch.float32 or args.ours_int8:
        low_ids = our_encode(audio).streams[0].cpu()
        agree = (low_ids == official_ids).float().mean().item()
        first = (low_ids[:, 0] == official_ids[:, 0]).float().mean().item()
        low_diff = (our_decode(official_tokens)[:, : reference.shape[1]] - reference).abs().max().item()
        print(f"tok in {args.ours_label} against the official in fp32: ids equal {agree:.2%} "
              f"(first codebook {first:.2%}); decoding the official ids: max |diff| {low_diff:.2e}", flush=True)

    print_header("x real time")
    rows = []
    for batch in args.batches:
        audio = audio_all[:batch].to(device)
        if batch == biggest and dtype == torch.float32 and args.ours_dtype == torch.float32 and not args.ours_int8:
            official_codes, our_tokens = codes_list, tokens  # already computed by the parity check
        else:
            official_codes, our_tokens = official_encode(audio), our_encode(audio)
        rows += time_ops({
            "encode": {"official": lambda a=audio: official_encode(a), "tok": lambda a=audio: our_encode(a)},
            "decode": {"official": lambda c=official_codes: official_decode(c), "tok": lambda t=our_tokens: our_decode(t)},
        }, batch, batch * length / sample_rate, "x real time", args.repeats, device)
    return rows
