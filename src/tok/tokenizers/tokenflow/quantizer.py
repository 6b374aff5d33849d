"""TokenFlow's shared-index dual codebook (Qu et al., arXiv 2412.03069, section 3.2).

Written by hand because vector-quantize-pytorch has no quantizer in which one index selects an
entry from two codebooks of different widths by a joint distance: its `VectorQuantize`,
`ResidualVQ` and `HierarchicalVQ` all keep one codebook per index, and splitting the 40 channels
into two separate VQs would give two independent ids per position instead of one shared id.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import pack, unpack
from torch import Tensor, nn

from ...core.quantize import Quantizer, QuantizerOutput, row_blocks


def squared_distances(z: Tensor, codebook: Tensor, codebook_sq: Tensor | None = None) -> Tensor:
    """(N, d) x (K, d) -> (N, K) squared Euclidean distances, expanded as |z|^2 + |e|^2 - 2 z.e
    with the official order of operations (so argmin ties resolve the same way). `addmm` with
    alpha=-2 is that expression bit for bit (scaling by -2 is exact) in one pass over (N, K)
    instead of three. `codebook_sq`: the rows' |e|^2, when computed once for many calls."""
    if codebook_sq is None:
        codebook_sq = codebook.pow(2).sum(1)
    return torch.addmm(z.pow(2).sum(1, keepdim=True) + codebook_sq, z, codebook.t(), alpha=-2)


def entropy_loss(affinity: Tensor, temperature: float = 0.01) -> Tensor:
    """Per-sample entropy minus batch-average entropy of softmax(affinity / T) (MaskGIT/LlamaGen)."""
    probs = F.softmax(affinity / temperature, dim=-1)
    log_probs = F.log_softmax(affinity / temperature + 1e-5, dim=-1)
    avg = probs.mean(0)
    return -(probs * log_probs).sum(-1).mean() + (avg * torch.log(avg + 1e-5)).sum()


class DualCodebookQuantizer(Quantizer):
    """One index picks a (semantic, pixel) pair of codebook entries.

    The input's channels split into a semantic half (`semantic_dim`, 32) and a pixel half
    (`pixel_dim`, 8). Both halves and both codebooks are L2-normalised; the index minimises
    d_semantic + pixel_weight * d_pixel (squared distances), and the output is the concatenated
    pair, with a straight-through gradient to the normalised input.

    Losses (TokenFlow's, averaged over elements): codebook mean((z_q - sg(z))^2), commitment
    beta * mean((sg(z_q) - z)^2) with beta passed explicitly (the official CLI uses 0.25, its
    dataclass default is 1.0), optional entropy term. In training mode the most recent ids are
    kept in the `codebook_used` buffer (part of the official checkpoint) for a usage estimate.

    Keys: `embedding_vqkd.weight` (K, 32), `embedding_vqgan.weight` (K, 8), `codebook_used`.
    """

    def __init__(
        self,
        codebook_size: int,
        semantic_dim: int = 32,
        pixel_dim: int = 8,
        beta: float = 0.25,
        entropy_loss_ratio: float = 0.0,
        pixel_weight: float = 1.0,
        usage_size: int = 131072,
        chunk: int = 64,
    ):
        super().__init__()
        self.vocab_size, self.dim = codebook_size, semantic_dim + pixel_dim
        self.split = (semantic_dim, pixel_dim)
        self.beta, self.entropy_loss_ratio, self.pixel_weight, self.chunk = beta, entropy_loss_ratio, pixel_weight, chunk
        self.embedding_vqkd = nn.Embedding(codebook_size, semantic_dim)
        self.embedding_vqgan = nn.Embedding(codebook_size, pixel_dim)
        for table in (self.embedding_vqkd, self.embedding_vqgan):
            nn.init.uniform_(table.weight, -1.0 / codebook_size, 1.0 / codebook_size)
            table.weight.data = F.normalize(table.weight.data, dim=-1)
        self.register_buffer("codebook_used", torch.zeros(usage_size))

    def codebooks(self) -> tuple[Tensor, Tensor]:
        return F.normalize(self.embedding_vqkd.weight, dim=-1), F.normalize(self.embedding_vqgan.weight, dim=-1)

    def joint_distances(self, z_sem: Tensor, z_pix: Tensor, e_sem: Tensor, e_pix: Tensor, squares: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """(N, K) d_semantic + pixel_weight * d_pixel; `squares`: the codebooks' |e|^2, if known."""
        sq_sem, sq_pix = squares if squares is not None else (None, None)
        d_pix = squared_distances(z_pix, e_pix, sq_pix)
        if self.pixel_weight != 1:  # (a multiplication by 1 is exact, and skipped)
            d_pix = self.pixel_weight * d_pix
        return squared_distances(z_sem, e_sem, sq_sem).add_(d_pix)

    def nearest(self, z_sem: Tensor, z_pix: Tensor, e_sem: Tensor, e_pix: Tensor) -> Tensor:
        """argmin of the joint distance, always in fp32 (bf16 distances change ids), over blocks of
        `chunk` rows: the (rows, K) distances of a 64-row block (8 MiB for 32k codes) stay in the
        cache, where one (N, K) matrix for a batch's finest scale (2048 x 32k, 256 MiB) made every
        elementwise pass a trip to memory (measured 4x slower)."""
        z_sem, z_pix, e_sem, e_pix = (t.float() for t in (z_sem, z_pix, e_sem, e_pix))
        with torch.no_grad(), torch.autocast(z_sem.device.type, enabled=False):
            squares = (e_sem.pow(2).sum(1), e_pix.pow(2).sum(1))
            sizes = row_blocks(len(z_sem), self.chunk)
            return torch.cat(
                [
                    self.joint_distances(s, p, e_sem, e_pix, squares).argmin(1)
                    for s, p in zip(z_sem.split(sizes), z_pix.split(sizes))
                ]
            )

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z: (B, ..., 40) channel-last -> z_q (same shape), ids (B, ...), loss."""
        self.check_input(z)
        flat, packed = pack([z], "* d")
        z_sem, z_pix = (F.normalize(t, dim=-1) for t in flat.split(self.split, dim=-1))
        z_norm = torch.cat([z_sem, z_pix], dim=-1)
        e_sem, e_pix = self.codebooks()
        ids = self.nearest(z_sem, z_pix, e_sem, e_pix)
        z_q = torch.cat([e_sem[ids], e_pix[ids]], dim=-1)

        codebook = torch.mean((z_q - z_norm.detach()) ** 2)
        commit = self.beta * torch.mean((z_q.detach() - z_norm) ** 2)
        parts = {"codebook": codebook, "commit": commit}
        if self.entropy_loss_ratio > 0:
            affinity = -self.joint_distances(z_sem, z_pix, e_sem, e_pix)
            parts["entropy"] = self.entropy_loss_ratio * entropy_loss(affinity)
        if self.training:
            self.record_usage(ids)

        z_q = z_norm + (z_q - z_norm).detach()
        (z_q,) = unpack(z_q, packed, "* d")
        (ids,) = unpack(ids, packed, "*")
        return QuantizerOutput(z_q, ids, sum(parts.values()), parts)

    @torch.no_grad()
    def record_usage(self, ids: Tensor) -> None:
        """Shift the newest ids into the end of the rolling `codebook_used` buffer."""
        ids = ids.flatten()[-self.codebook_used.numel() :].to(self.codebook_used.dtype)
        n = ids.numel()
        self.codebook_used[:-n] = self.codebook_used[n:].clone()
        self.codebook_used[-n:] = ids

    def usage(self) -> float:
        """Fraction of the codebook among the ids in the usage buffer."""
        return torch.unique(self.codebook_used).numel() / self.vocab_size

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        """ids (B, ...) -> (B, ..., 40) normalised (semantic, pixel) pairs."""
        e_sem, e_pix = self.codebooks()
        return torch.cat([e_sem[ids], e_pix[ids]], dim=-1)
