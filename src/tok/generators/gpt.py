"""A Llama-style decoder-only transformer over token patterns (LlamaGen, arXiv 2406.06525).

Pre-norm RMSNorm (eps 1e-5), SwiGLU feed-forward with hidden width round-up-to-256 of
int(2 * 4d / 3), no biases, SDPA attention, RoPE over the pattern's position axes (1D for
sequences, LlamaGen's 2D for images, 3D for video), N(0, 0.02) init with a zero output head.

Conditioning follows LlamaGen's c2i model: a class embedding with `num_classes + 1` rows (the
last is the null class of classifier-free guidance) is the input at the first step; during
training each label is replaced by the null class with probability `class_dropout`. An
unconditional model has one row: a learned start token.

One model class serves every pattern: Q ids per step use Q slots of one embedding table and
one output head of Q * vocab logits (summed embeddings and one head per codebook, as MusicGen's
LM does for the delay pattern); patterns with levels (scales, flat codebooks) add a learned
level embedding to the input.

Parameter names follow LlamaGen (`tok_embeddings`, `cls_embedding.embedding_table`,
`layers.N.attention.wqkv`, `attention_norm`, `ffn_norm`, `norm`, `output`), except the
feed-forward, which is the shared `tok.nn.mlp.GatedMLP` (`fc1`, `fc3`, `fc2` for LlamaGen's
`w1`, `w3`, `w2`; `llamagen_key` maps them). With `llamagen_rope` a LlamaGen c2i checkpoint
gives LlamaGen's logits (tests/data/llamagen_parity.safetensors); without it, RoPE angles follow
the predicted token (see `GPTConfig`). No GQA.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ..core import TokError
from ..nn.mlp import GatedMLP
from ..nn.rope import RotaryEmbedding, apply_rotary
from .patterns import Pattern


def llamagen_ffn_hidden(dim: int, multiple_of: int = 256) -> int:
    hidden = int(2 * 4 * dim / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


@dataclass(frozen=True)
class GPTConfig:
    """Transformer size and conditioning; the vocabulary and positions come from the pattern.

    Args:
        dim: model width.
        depth: number of blocks.
        num_heads: attention heads (head width dim / num_heads).
        ffn_hidden: SwiGLU hidden width; None gives LlamaGen's formula.
        num_classes: 0 for an unconditional model.
        class_dropout: probability of replacing a label by the null class in training.
        dropout: residual, feed-forward and input-embedding dropout (LlamaGen uses 0.1).
        rope_base: RoPE frequency base.
        llamagen_rope: LlamaGen's RoPE convention, to run its checkpoints: each step is rotated by
            the position of its *input* token, and the class-token step by zero angles (cos = sin
            = 0, which zeroes its queries and keys). Off: each step is rotated by the position of
            the token it predicts, which also serves next-scale and delay patterns.
    """

    dim: int = 768
    depth: int = 12
    num_heads: int = 12
    ffn_hidden: int | None = None
    num_classes: int = 0
    class_dropout: float = 0.1
    dropout: float = 0.0
    rope_base: float = 10000.0
    llamagen_rope: bool = False

    def __post_init__(self):
        if self.dim % self.num_heads:
            raise TokError(f"width {self.dim} is not divisible by {self.num_heads} heads")
        if self.num_classes < 0 or not 0 <= self.class_dropout < 1:
            raise TokError(f"bad conditioning: num_classes={self.num_classes}, class_dropout={self.class_dropout}")

    @property
    def hidden(self) -> int:
        return self.ffn_hidden or llamagen_ffn_hidden(self.dim)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise TokError(f"unknown GPT config fields: {', '.join(sorted(unknown))}")
        return cls(**d)


# LlamaGen sizes (autoregressive/models/gpt.py: GPT_B, GPT_L, GPT_XL) and small ones for CPU.
PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(dim=64, depth=2, num_heads=2, ffn_hidden=128),
    "small": GPTConfig(dim=192, depth=4, num_heads=3),
    "medium": GPTConfig(dim=384, depth=8, num_heads=6),
    "llamagen-b": GPTConfig(dim=768, depth=12, num_heads=12, dropout=0.1),
    "llamagen-l": GPTConfig(dim=1024, depth=24, num_heads=16, dropout=0.1),
    "llamagen-xl": GPTConfig(dim=1280, depth=36, num_heads=20, dropout=0.1),
}


def preset(name: str, **overrides: Any) -> GPTConfig:
    if name not in PRESETS:
        raise TokError(f"unknown AR preset {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def llamagen_key(key: str) -> str:
    """A LlamaGen c2i state-dict key -> ours (only the feed-forward names differ)."""
    for theirs, ours in ((".feed_forward.w1.", ".feed_forward.fc1."), (".feed_forward.w3.", ".feed_forward.fc3."), (".feed_forward.w2.", ".feed_forward.fc2.")):
        key = key.replace(theirs, ours)
    return key


class KVCache:
    """Preallocated keys and values of every layer for `batch` sequences of up to `length` steps."""

    def __init__(self, depth: int, batch: int, num_heads: int, length: int, head_dim: int, device: torch.device, dtype: torch.dtype):
        shape = (batch, num_heads, length, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(depth)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(depth)]

    def update(self, layer: int, start: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, H, l, Dh) at steps [start, start + l); return everything up to there."""
        end = start + k.shape[2]
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)  # LlamaGen's fused q, k, v
        self.wo = nn.Linear(dim, dim, bias=False)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None, causal: bool, cache: KVCache | None, layer: int, start: int) -> Tensor:
        q, k, v = rearrange(self.wqkv(x), "b l (three h d) -> three b h l d", three=3, h=self.num_heads)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, start, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)  # LlamaGen: no attention dropout
        return self.resid_dropout(self.wo(rearrange(out, "b h l d -> b l (h d)")))


class TransformerBlock(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.dim, eps=1e-5)
        self.attention = Attention(config.dim, config.num_heads, config.dropout)
        self.ffn_norm = nn.RMSNorm(config.dim, eps=1e-5)
        self.feed_forward = GatedMLP(config.dim, config.hidden)
        self.ffn_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None, causal: bool, cache: KVCache | None, layer: int, start: int) -> Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, mask, causal, cache, layer, start)
        return x + self.ffn_dropout(self.feed_forward(self.ffn_norm(x)))


class LabelEmbedder(nn.Module):
    """Class labels -> embeddings; row `num_classes` is the null class when dropout is on."""

    def __init__(self, num_classes: int, dim: int, dropout: float):
        super().__init__()
        self.num_classes, self.dropout = num_classes, dropout
        rows = num_classes + 1 if num_classes and dropout > 0 else max(num_classes, 1)
        self.embedding_table = nn.Embedding(rows, dim)

    def forward(self, labels: Tensor) -> Tensor:
        if self.training and self.num_classes and self.dropout > 0:
            drop = torch.rand(labels.shape, device=labels.device) < self.dropout
            labels = torch.where(drop, self.num_classes, labels)
        return self.embedding_table(labels)


class GPT(nn.Module):
    """Decoder-only transformer for one token pattern.

    `forward(ids, labels)` takes input ids (B, l, Q) for steps [start, start + l) (see
    `Pattern.inputs`) and returns logits (B, l, Q, vocab).
    """

    def __init__(self, config: GPTConfig, pattern: Pattern):
        super().__init__()
        self.config, self.pattern = config, pattern
        dim, head_dim = config.dim, config.dim // config.num_heads
        self.vocab_size, self.width = pattern.vocab_size, pattern.width
        self.tok_embeddings = nn.Embedding(self.width * self.vocab_size, dim)
        self.cls_embedding = LabelEmbedder(config.num_classes, dim, config.class_dropout)
        self.level_embeddings = nn.Embedding(pattern.num_levels, dim) if pattern.num_levels > 1 else None
        self.tok_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.depth))
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.output = nn.Linear(dim, self.width * self.vocab_size, bias=False)
        rope = RotaryEmbedding(head_dim, pattern.num_axes, config.rope_base)
        positions = pattern.positions
        if config.llamagen_rope:
            positions = positions[pattern.sources.clamp(min=0)]
        cos, sin = rope(positions.to(rope.freqs.device))
        if config.llamagen_rope:
            at_start = (pattern.sources < 0).to(cos.device)[:, None]
            cos, sin = cos.masked_fill(at_start, 0.0), sin.masked_fill(at_start, 0.0)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("slot_offsets", torch.arange(self.width) * self.vocab_size, persistent=False)
        self.register_buffer("is_start", pattern.sources < 0, persistent=False)
        self.register_buffer("levels", pattern.levels, persistent=False)
        self.register_buffer("groups", pattern.groups, persistent=False)
        self.causal = pattern.is_causal
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(self.output.weight)  # LlamaGen: every class starts equally likely

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def null_class(self) -> int:
        """The label of the unconditional branch (the start token of an unconditional model)."""
        return self.config.num_classes if self.config.num_classes else 0

    @property
    def has_null_class(self) -> bool:
        return self.cls_embedding.embedding_table.num_embeddings > self.config.num_classes > 0

    def make_cache(self, batch: int) -> KVCache:
        c = self.config
        weight = self.output.weight
        return KVCache(c.depth, batch, c.num_heads, self.pattern.length, c.dim // c.num_heads, weight.device, weight.dtype)

    def check_labels(self, labels: Tensor) -> None:
        rows = self.cls_embedding.embedding_table.num_embeddings
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= rows):
            allowed = f"0..{self.num_classes - 1}" if self.num_classes else "0 (unconditional model)"
            if self.has_null_class:
                allowed += f" ({self.null_class} = unconditional)"
            raise TokError(f"class label out of range: got {labels.tolist()}, the model takes {allowed}")

    def forward(self, ids: Tensor, labels: Tensor, start: int = 0, cache: KVCache | None = None, last: int | None = None) -> Tensor:
        """`last`: return logits of the last `last` steps only (sampling without a cache)."""
        batch, length, width = ids.shape
        end = start + length
        if width != self.width or end > self.pattern.length:
            raise ValueError(f"expected ids (B, <= {self.pattern.length - start}, {self.width}), got {tuple(ids.shape)}")
        x = self.tok_embeddings(ids + self.slot_offsets).sum(dim=2)  # (B, l, D): Q slots summed
        start_token = self.cls_embedding(labels)[:, None, :]
        x = torch.where(self.is_start[start:end, None], start_token, x)
        if self.level_embeddings is not None:
            x = x + self.level_embeddings(self.levels[start:end])
        x = self.tok_dropout(x)
        mask, causal = self._mask(start, end, cache is not None)
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, causal, cache, i, start)
        if last is not None:
            x, length = x[:, length - last :], last
        logits = self.output(self.norm(x))
        return logits.view(batch, length, self.width, self.vocab_size)

    def _mask(self, start: int, end: int, cached: bool) -> tuple[Tensor | None, bool]:
        """The attention mask for queries [start, end) over keys [0, end) (or [start, end) uncached)."""
        key_start = 0 if cached else start
        if not cached and start == 0 and self.causal:
            return None, True  # SDPA's fused causal path
        mask = self.groups[key_start:end][None, :] <= self.groups[start:end][:, None]
        return (None if bool(mask.all()) else mask), False

    def loss(self, seq: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the ids (B, L, Q) given their inputs; forced slots are ignored."""
        return sequence_loss(self(self.pattern.inputs(seq), labels), self.pattern.targets(seq))


def sequence_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy in nats per predicted id: logits (B, L, Q, V), targets (B, L, Q) with -100 ignored."""
    return F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), ignore_index=-100)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
