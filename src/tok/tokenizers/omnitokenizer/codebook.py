"""OmniTokenizer's EMA codebook (VQ-VAE-2 style), with the official buffer names.

Written by hand rather than over vector-quantize-pytorch because the checkpoints store this
exact state (`embeddings`, `N`, `z_avg`, `codebook_usage`) and the ids must come from the same
squared-distance expansion to match the official ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...core.quantize import Quantizer, QuantizerOutput, row_blocks


class Codebook(Quantizer):
    """Nearest code by squared L2 distance; in training, EMA updates of counts and sums (decay
    0.99) and a data-dependent initialisation on the first training batch of a fresh model.

    `need_init` is False for loaded checkpoints, so their codes are never re-initialised.
    Dead-code restarts are off, as in the released runs (`--no_random_restart`). The loss is the
    hard-coded 0.25 * MSE(z, sg(e)) commitment term.
    """

    def __init__(self, n_codes: int, embedding_dim: int, decay: float = 0.99):
        super().__init__()
        self.vocab_size, self.dim, self.decay = n_codes, embedding_dim, decay
        self.register_buffer("embeddings", torch.randn(n_codes, embedding_dim))
        self.register_buffer("N", torch.zeros(n_codes))
        self.register_buffer("z_avg", self.embeddings.clone())
        self.register_buffer("codebook_usage", torch.zeros(n_codes))
        self.need_init = True

    # Rows per block of the search: a block's (rows, n_codes) distances stay in the cache (8192
    # codes: 2 MiB), where one matrix for a batch of 8 images (8192 x 8192, 256 MiB) made each
    # elementwise pass a trip to memory.
    search_rows: int = 64

    def distances(self, flat: Tensor, codes_sq: Tensor | None = None) -> Tensor:
        """(M, D) -> (M, n_codes) squared distances in fp32: the official expansion
        |z|^2 - 2 z.e + |e|^2 in its order of operations, bit for bit (`addmm` with alpha=-2
        scales exactly). `codes_sq`: the (1, n_codes) |e|^2, when computed once for many calls."""
        codes = self.embeddings.float()
        if codes_sq is None:
            codes_sq = (codes.t() ** 2).sum(dim=0, keepdim=True)
        return torch.addmm((flat**2).sum(dim=1, keepdim=True), flat, codes.t(), alpha=-2).add_(codes_sq)

    def nearest(self, flat: Tensor) -> Tensor:
        """(M, D) -> (M,) ids of the nearest codes, in fp32 whatever the autocast state (a bf16
        distance matmul changes ids), over row blocks (`row_blocks`)."""
        flat = flat.float()
        with torch.autocast(flat.device.type, enabled=False):
            codes_sq = (self.embeddings.float().t() ** 2).sum(dim=0, keepdim=True)
            blocks = flat.split(row_blocks(len(flat), self.search_rows))
            return torch.cat([self.distances(z, codes_sq).argmin(dim=1) for z in blocks])

    @torch.no_grad()
    def _init_from(self, flat: Tensor) -> None:
        """Codes drawn from the batch (tiled with small noise when it has fewer vectors than codes)."""
        if flat.shape[0] < self.vocab_size:
            repeats = -(-self.vocab_size // flat.shape[0])
            flat = flat.repeat(repeats, 1)
            flat = flat + torch.randn_like(flat) * (0.01 / flat.shape[1] ** 0.5)
        picked = flat[torch.randperm(flat.shape[0], device=flat.device)[: self.vocab_size]]
        self.embeddings.copy_(picked)
        self.z_avg.copy_(picked)
        self.N.fill_(1.0)
        self.need_init = False

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, ids: Tensor) -> None:
        onehot = F.one_hot(ids, self.vocab_size).type_as(flat)
        self.N.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.z_avg.mul_(self.decay).add_((flat.t() @ onehot).t(), alpha=1 - self.decay)
        total = self.N.sum()
        weights = (self.N + 1e-7) / (total + self.vocab_size * 1e-7) * total
        self.embeddings.copy_(self.z_avg / weights.unsqueeze(1))
        usage = torch.bincount(ids, minlength=self.vocab_size).float() / ids.numel()
        self.codebook_usage.mul_(0.99).add_(usage, alpha=0.01)

    def forward(self, z: Tensor) -> QuantizerOutput:
        """z: (B, ..., D) channel-last -> straight-through codes, ids (B, ...), commitment loss."""
        self.check_input(z)
        flat = z.reshape(-1, self.dim).float()
        if self.training and self.need_init:
            self._init_from(flat.detach())
        ids = self.nearest(flat.detach())
        codes = F.embedding(ids, self.embeddings).view(z.shape).to(z.dtype)
        loss = 0.25 * F.mse_loss(z, codes.detach())
        if self.training:
            self._ema_update(flat.detach(), ids)
        return QuantizerOutput(z + (codes - z).detach(), ids.view(z.shape[:-1]), loss)

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.embeddings)
