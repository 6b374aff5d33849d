"""Record reference outputs of the official XY-Tokenizer code for `test_xy_parity.py`.

Not run by the tests. How `xy_tokenizer_parity.safetensors` was made:

1. Take the official repo gyt1145028706/XY-Tokenizer at commit 5df5609 (its `xy_tokenizer/`
   package) and a Python environment with torch, torchaudio, librosa and transformers (5.23.0
   was used, torch 2.11 CPU).
2. Run `python make_xy_tokenizer_parity.py OFFICIAL_REPO_DIR OUTPUT.safetensors`.

The script builds the official `XY_Tokenizer` with a tiny configuration (widths 32, one layer
per tower, 8 x 1024 codebooks of width 16, 30-s position tables as the official feature
extractor always pads to 30 s), random weights rounded to fp16, random initialised codebooks, and
stores: the weights (official key layout), two test waveforms, the official log-mel features, the
official codes for the two waveforms as one batch (`inference_tokenize`), and each item's
official decoded audio (`inference_detokenize`, one item at a time). Only these tensors are kept,
never the official code.
"""

from __future__ import annotations

import math
import sys

import torch
from safetensors.torch import save_file

SAMPLE_RATE = 16000
DIM = 32
TOWER = dict(d_model=DIM, encoder_attention_heads=2, encoder_ffn_dim=64)


def official_params() -> dict:
    mel = dict(num_mel_bins=80, sampling_rate=SAMPLE_RATE, hop_length=160, stride_size=2, kernel_size=3,
               d_model=DIM, scale_embedding=False, max_audio_seconds=30, activation_function="gelu")
    return {
        "sample_rate": SAMPLE_RATE,
        "feature_extractor_kwargs": dict(chunk_length=30, feature_size=80, hop_length=160, n_fft=400, n_samples=480000,
                                         nb_max_frames=3000, padding_side="right", padding_value=0.0,
                                         return_attention_mask=False, sampling_rate=SAMPLE_RATE),
        "semantic_encoder_kwargs": dict(mel, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64),
        "semantic_encoder_adapter_kwargs": dict(input_dim=DIM, output_dim=DIM, max_source_positions=1500, encoder_layers=1, **TOWER),
        "acoustic_encoder_kwargs": dict(mel, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64),
        "pre_rvq_adapter_kwargs": dict(input_dim=2 * DIM, output_dim=DIM, max_source_positions=1500, encoder_layers=1, **TOWER),
        "downsample_kwargs": dict(d_model=DIM, avg_pooler=4),
        "quantizer_kwargs": dict(input_dim=4 * DIM, rvq_dim=16, output_dim=4 * DIM, num_quantizers=8, codebook_size=1024,
                                 codebook_dim=16, quantizer_dropout=0.0, commitment=1),
        "post_rvq_adapter_kwargs": dict(input_dim=4 * DIM, output_dim=4 * DIM, max_source_positions=375, encoder_layers=1, **TOWER),
        "upsample_kwargs": dict(d_model=DIM, stride=4),
        "acoustic_decoder_kwargs": dict(mel, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64),
        "vocos_kwargs": dict(input_channels=80, dim=DIM, intermediate_dim=64, num_layers=1, n_fft=640, hop_size=160, padding="same"),
    }


def waveforms() -> tuple[torch.Tensor, list[int]]:
    """Two speech-like test signals (harmonic tones with a syllable-rate envelope plus noise)."""
    g = torch.Generator().manual_seed(7)
    lengths = [51_300, 33_000]  # 3.2 s and 2.06 s: neither a multiple of 160 nor of 1280
    wav = torch.zeros(2, max(lengths))
    for i, n in enumerate(lengths):
        t = torch.arange(n) / SAMPLE_RATE
        f0 = 110 + 40 * i + 20 * torch.sin(2 * math.pi * 0.7 * t)
        phase = 2 * math.pi * torch.cumsum(f0, 0) / SAMPLE_RATE
        voiced = sum(torch.sin(k * phase) / k for k in range(1, 12))
        envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t) ** 2
        wav[i, :n] = 0.2 * envelope * voiced + 0.02 * torch.randn(n, generator=g)
    return wav, lengths


def main(repo: str, output: str) -> None:
    sys.path.insert(0, repo)
    from xy_tokenizer.model import XY_Tokenizer

    torch.manual_seed(0)
    model = XY_Tokenizer(official_params()).eval()
    state = model.state_dict()
    g = torch.Generator().manual_seed(1)
    for key, value in state.items():
        if key.endswith((".codebook", ".embed_avg")):
            if key.endswith(".codebook"):
                value.copy_(0.5 * torch.randn(value.shape, generator=g))
        elif key.endswith(".cluster_size"):
            value.fill_(1.0)
        elif key.endswith(".inited"):
            value.fill_(True)
        elif key.endswith(".gamma"):
            value.fill_(0.5)  # layer scale: make the vocoder's blocks matter
        if value.is_floating_point():
            value.copy_(value.half().float())  # weights exactly representable in the fp16 file
    for key, value in state.items():
        if key.endswith(".embed_avg"):
            value.copy_(state[key.replace(".embed_avg", ".codebook")])
    model.load_state_dict(state)

    wav, lengths = waveforms()
    features = model.feature_extractor(
        [wav[i, :n].numpy() for i, n in enumerate(lengths)], sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
    )
    with torch.inference_mode():
        tokenized = model.inference_tokenize(wav[:, None], torch.tensor(lengths))
        codes, code_lengths = tokenized["codes"], tokenized["codes_lengths"]
        decoded = []
        for i, n in enumerate(lengths):
            t = n // 1280  # what the official `encode` keeps
            decoded.append(model.inference_detokenize(codes[:, i : i + 1, :t], torch.tensor([t]))["y"][0, 0])
    out = {f"weights.{k}": v.half() if v.is_floating_point() else v for k, v in state.items()}
    out.update({
        "wav": wav,
        "lengths": torch.tensor(lengths),
        "mel": features["input_features"][:, :, : max(-(-n // 160) for n in lengths) + 1].contiguous(),
        "mel_lengths": features["attention_mask"].sum(-1),
        "codes": codes.permute(1, 0, 2).contiguous(),  # (B, 8, T)
        "code_lengths": code_lengths,
        "zq": tokenized["zq"].contiguous(),
        "audio0": decoded[0].contiguous(),
        "audio1": decoded[1].contiguous(),
    })
    save_file(out, output, metadata={"source": "gyt1145028706/XY-Tokenizer@5df5609, make_xy_tokenizer_parity.py"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
