"""Record reference outputs of the official WavTokenizer modules for tests/codecs/test_wavtokenizer_parity.py.

Run from a checkout of jishengpeng/WavTokenizer (snapshot 5cf440d; not part of this project):

    PYTHONPATH=/path/to/WavTokenizer python tests/data/make_wavtokenizer_parity.py tests/data/wavtokenizer_parity.safetensors

It builds the official modules at the size of tok's `wavtokenizer-tiny` preset, wired the way
`WavTokenizer.encode_infer` / `decode` and `EncodecFeatures.infer` wire them (SEANet encoder ->
`ResidualVectorQuantizer.infer` -> `VocosBackbone(bandwidth_id=0)` -> `ISTFTHead`), fills every
weight with seeded random values (codebook rows from encoder latents, `inited` = 1 so k-means does
not run), encodes two clips and stores: the state dict in the official key layout (`state.*`),
the input audio, the codes, the quantized features and the decoded waveform.
"""

import sys

import torch
from safetensors.torch import save_file
from torch import nn

from decoder.heads import ISTFTHead
from decoder.models import VocosBackbone
from encoder.modules import SEANetEncoder
from encoder.quantization import ResidualVectorQuantizer

torch.manual_seed(0)
# tok's "tiny" preset: ratios (4,2,2,2), n_filters 4, latent 16, 1 LSTM layer, 64 codes,
# backbone 32/48 x 2 layers, 4 AdaLN rows, n_fft 128, hop 32.
model = nn.Module()
model.feature_extractor = nn.Module()
model.feature_extractor.encodec = nn.Module()
model.feature_extractor.encodec.encoder = SEANetEncoder(
    causal=False, n_residual_layers=1, norm="weight_norm", pad_mode="reflect", lstm=1, dimension=16, channels=1,
    n_filters=4, ratios=[4, 2, 2, 2], activation="ELU", kernel_size=7, residual_kernel_size=3, last_kernel_size=7,
    dilation_base=2, true_skip=False, compress=2,
)
model.feature_extractor.encodec.quantizer = ResidualVectorQuantizer(dimension=16, n_q=1, bins=64, kmeans_iters=2, decay=0.99, kmeans_init=True)
model.backbone = VocosBackbone(input_channels=16, dim=32, intermediate_dim=48, num_layers=2, adanorm_num_embeddings=4)
model.head = ISTFTHead(dim=32, n_fft=128, hop_length=32, padding="same")
model.eval()

with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * (0.3 if p.ndim > 1 else 0.1) + (1.0 if name.endswith(("weight_g", "norm.scale.weight")) else 0.0))
    t = torch.arange(3000) / 24000
    audio = torch.stack([0.4 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(3000), 0.3 * torch.randn(3000)])
    latents = model.feature_extractor.encodec.encoder(audio[:, None])  # (B, 16, T)
    codebook = model.feature_extractor.encodec.quantizer.vq.layers[0]._codebook
    frames = latents.transpose(1, 2).reshape(-1, 16)
    codebook.embed.copy_(frames[torch.randperm(frames.shape[0])[:64]] + 0.1 * torch.randn(64, 16))
    codebook.embed_avg.copy_(codebook.embed)
    codebook.cluster_size.fill_(3.0)
    codebook.inited.fill_(1.0)
    result = model.feature_extractor.encodec.quantizer.infer(latents, 25, bandwidth=6.6)
    features, codes = result.quantized, result.codes  # (B, 16, T), (1, B, T)
    decoded = model.head(model.backbone(features, bandwidth_id=torch.tensor([0])))

tensors = {f"state.{k}": v.contiguous() for k, v in model.state_dict().items()}
tensors.update({k: v.contiguous() for k, v in {"audio": audio, "codes": codes, "features": features, "decoded": decoded}.items()})
save_file(tensors, sys.argv[1], metadata={"source": "jishengpeng/WavTokenizer@5cf440d modules, tok wavtokenizer-tiny sizes"})
print({k: tuple(v.shape) for k, v in tensors.items() if not k.startswith("state.")}, "unique codes:", codes.unique().numel())
