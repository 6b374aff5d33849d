"""XY-Tokenizer's residual VQ: weight-normed projections around 8 EMA codebooks.

The codebooks run through the shared `ResidualVQQuantizer` adapter (vector-quantize-pytorch) with
the official settings: Euclidean nearest neighbour, EMA decay 0.99, Laplace eps 1e-5, k-means
init (10 iterations), dead-code replacement below an EMA count of 2, commitment weight 1, plain
straight-through gradients. The official buffers map one to one onto the library's
(`official_to_library` / `library_to_official`), so loading never re-runs k-means.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from ...core.quantize import ResidualVQQuantizer
from ...nn.weight_norm import WNConv1d
from .layers import length_mask

# official per-level key -> (library key, reshape applied when loading into the library)
_OFFICIAL_BUFFERS = {
    "codebook": "embed",
    "inited": "initted",
    "cluster_size": "cluster_size",
    "embed_avg": "embed_avg",
}
_LIBRARY_BUFFERS = {v: k for k, v in _OFFICIAL_BUFFERS.items()}
_OFFICIAL_KEY = re.compile(r"^(?P<prefix>.*)quantizers\.(?P<level>\d+)\.(?P<name>codebook|inited|cluster_size|embed_avg)$")
_LIBRARY_KEY = re.compile(r"^(?P<prefix>.*)residual_vq\.rvq\.layers\.(?P<level>\d+)\._codebook\.(?P<name>embed|initted|cluster_size|embed_avg)$")


class XYResidualVQ(nn.Module):
    """(B, input_dim, T) -> input_proj -> RVQ over rvq_dim -> output_proj -> (B, output_dim, T)."""

    def __init__(self, input_dim: int, rvq_dim: int, output_dim: int, num_quantizers: int, codebook_size: int, kmeans_init: bool = True):
        super().__init__()
        self.num_quantizers, self.codebook_size, self.rvq_dim = num_quantizers, codebook_size, rvq_dim
        self.input_proj = WNConv1d(input_dim, rvq_dim, kernel_size=1)
        self.output_proj = WNConv1d(rvq_dim, output_dim, kernel_size=1)
        self.residual_vq = ResidualVQQuantizer(
            rvq_dim,
            num_quantizers,
            codebook_size,
            decay=0.99,
            eps=1e-5,
            kmeans_init=kmeans_init,
            kmeans_iters=10,
            threshold_ema_dead_code=2,
            commitment_weight=1.0,
            rotation_trick=False,
        )

    def forward(self, z: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z (B, input_dim, T), lengths (B,) -> (z_q (B, output_dim, T), ids (B, Q, T), commitment loss).

        Codes are searched in float32 whatever the autocast state, as in the official code.
        """
        with torch.autocast(z.device.type, enabled=False):
            latent = self.input_proj(z.float()).transpose(1, 2)  # (B, T, rvq_dim)
            mask = length_mask(lengths, latent.shape[1])
            out = self.residual_vq(latent, mask=mask)
            z_q = torch.where(mask[..., None], out.z_q, 0.0)
            ids = out.ids.masked_fill(~mask[:, None, :], 0)
            return self.output_proj(z_q.transpose(1, 2)), ids, out.loss

    def decode_ids(self, ids: Tensor) -> Tensor:
        """ids (B, Q, T) -> (B, output_dim, T): sum of codebook vectors, then output_proj."""
        codes = self.residual_vq.ids_to_codes(ids)  # (B, T, rvq_dim)
        return self.output_proj(codes.transpose(1, 2).float())

    def set_random_codebooks(self, std: float = 1.0) -> None:
        """Random, already-initialised codebooks (tests and benchmarks without k-means)."""
        for layer in self.residual_vq.rvq.layers:
            book = layer._codebook
            book.embed.normal_(0.0, std)
            book.embed_avg.copy_(book.embed)
            book.cluster_size.fill_(1.0)
            book.initted.fill_(True)


def official_to_library(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename and reshape the official per-level buffers into the library's layout; other keys pass."""
    out = {}
    for key, value in state.items():
        m = _OFFICIAL_KEY.match(key)
        if m is None:
            out[key] = value
            continue
        name = _OFFICIAL_BUFFERS[m["name"]]
        new_key = f"{m['prefix']}residual_vq.rvq.layers.{m['level']}._codebook.{name}"
        if name == "initted":
            value = value.reshape(()).bool()
        else:
            value = value.float().unsqueeze(0)
        out[new_key] = value
    return out


def library_to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of `official_to_library`."""
    out = {}
    for key, value in state.items():
        m = _LIBRARY_KEY.match(key)
        if m is None:
            out[key] = value
            continue
        name = _LIBRARY_BUFFERS[m["name"]]
        new_key = f"{m['prefix']}quantizers.{m['level']}.{name}"
        out[new_key] = value.reshape(1).bool() if name == "inited" else value.squeeze(0)
    return out
