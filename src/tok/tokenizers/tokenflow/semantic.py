"""TokenFlow's semantic branch: the CLIP / SigLIP encoder towers and the BEiT-v2-style ViT decoder.

Key names follow the official checkpoint: the CLIP tower uses OpenAI CLIP's visual names
(`conv1`, `class_embedding`, `positional_embedding`, `ln_pre`, `transformer.resblocks.{i}`,
`ln_post`; `proj` removed), the SigLIP tower Hugging Face's `SiglipVisionModel` names
(`vision_model.embeddings`, `vision_model.encoder.layers.{i}`, `post_layernorm`, `head`), and the
decoder BEiT v2's (`patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.{i}.attn.qkv` with
separate `q_bias` / `v_bias`, `fc_norm`). Attention runs on PyTorch SDPA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def _heads(x: Tensor, num_heads: int) -> Tensor:
    return rearrange(x, "b l (h d) -> b h l d", h=num_heads)


def interpolate_pos_grid(pos: Tensor, grid: int) -> Tensor:
    """Resize a (N, D) square grid of position embeddings to (grid*grid, D).

    Same arithmetic as the official code (DINO's trick): bicubic with a scale factor of
    (grid + 0.1) / sqrt(N), so the numbers match the released model's run-time interpolation.
    """
    n, dim = pos.shape
    side = int(math.sqrt(n))
    if side == grid:
        return pos
    scale = (grid + 0.1) / math.sqrt(n)
    out = F.interpolate(pos.reshape(1, side, side, dim).permute(0, 3, 1, 2), scale_factor=(scale, scale), mode="bicubic")
    if out.shape[-1] != grid:
        raise ValueError(f"position embeddings of a {side}x{side} grid cannot be resized to {grid}x{grid}")
    return out.permute(0, 2, 3, 1).reshape(grid * grid, dim)


# -- CLIP visual tower (OpenAI names) ---------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """nn.MultiheadAttention's parameters (`in_proj_weight`, `in_proj_bias`, `out_proj`) on SDPA."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (_heads(t, self.num_heads) for t in F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        return self.out_proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h l d -> b l (h d)"))


class CLIPResidualBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.attn = CLIPAttention(dim, num_heads)
        self.ln_1 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, 4 * dim))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * dim, dim))
        self.ln_2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CLIPTransformer(nn.Module):
    def __init__(self, dim: int, layers: int, num_heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[CLIPResidualBlock(dim, num_heads) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        return self.resblocks(x)


class CLIPVisionTower(nn.Module):
    """OpenAI CLIP ViT visual tower without the output projection; returns ln_post(patch tokens).

    Position embeddings are made for `image_size`; other sizes interpolate them (the official
    `infer_interpolate`: the B model runs at 256 with embeddings trained at 224).
    """

    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, num_heads: int):
        super().__init__()
        self.patch_size = patch_size
        self.conv1 = nn.Conv2d(3, width, patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = CLIPTransformer(width, layers, num_heads)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> patch features (B, (H/p)*(W/p), width)."""
        x = rearrange(self.conv1(x), "b c h w -> b (h w) c")
        grid = math.isqrt(x.shape[1])
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = self.positional_embedding
        if x.shape[1] != pos.shape[0]:
            pos = torch.cat([pos[:1], interpolate_pos_grid(pos[1:], grid)])
        x = self.transformer(self.ln_pre(x + pos.to(x.dtype)))
        return self.ln_post(x[:, 1:])


# -- SigLIP vision tower (Hugging Face names) ------------------------------------------------------


class SiglipAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (_heads(p(x), self.num_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h l d -> b l (h d)"))


class SiglipMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipEncoderLayer(nn.Module):
    def __init__(self, dim: int, hidden: int, num_heads: int, eps: float):
        super().__init__()
        self.self_attn = SiglipAttention(dim, num_heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SiglipMLP(dim, hidden)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEmbeddings(nn.Module):
    def __init__(self, image_size: int, patch_size: int, dim: int):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.position_embedding = nn.Embedding((image_size // patch_size) ** 2, dim)

    def forward(self, x: Tensor) -> Tensor:
        x = rearrange(self.patch_embedding(x), "b c h w -> b (h w) c")
        if x.shape[1] != self.position_embedding.num_embeddings:
            raise ValueError(f"SigLIP tower expects {self.position_embedding.num_embeddings} patches, got {x.shape[1]}")
        return x + self.position_embedding.weight


class SiglipEncoder(nn.Module):
    def __init__(self, dim: int, hidden: int, layers: int, num_heads: int, eps: float):
        super().__init__()
        self.layers = nn.ModuleList([SiglipEncoderLayer(dim, hidden, num_heads, eps) for _ in range(layers)])


class SiglipPoolingHead(nn.Module):
    """The attention-pooling head. It is part of the checkpoint (frozen in training) but
    TokenFlow never runs it: the tower's output is the penultimate hidden state."""

    def __init__(self, dim: int, hidden: int, num_heads: int, eps: float):
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, dim))
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.layernorm = nn.LayerNorm(dim, eps=eps)
        self.mlp = SiglipMLP(dim, hidden)


class SiglipVisionTransformer(nn.Module):
    def __init__(self, image_size: int, patch_size: int, dim: int, hidden: int, layers: int, num_heads: int, eps: float):
        super().__init__()
        self.embeddings = SiglipEmbeddings(image_size, patch_size, dim)
        self.encoder = SiglipEncoder(dim, hidden, layers, num_heads, eps)
        self.post_layernorm = nn.LayerNorm(dim, eps=eps)
        self.head = SiglipPoolingHead(dim, hidden, num_heads, eps)


class SiglipVisionTower(nn.Module):
    """SigLIP vision model (HF `SiglipVisionModel` key layout); returns `hidden_states[-2]`,
    the output of the penultimate layer (the last layer, post-LN and head are unused)."""

    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, num_heads: int, mlp_dim: int, eps: float = 1e-6):
        super().__init__()
        self.patch_size = patch_size
        self.vision_model = SiglipVisionTransformer(image_size, patch_size, width, mlp_dim, layers, num_heads, eps)

    def forward(self, x: Tensor) -> Tensor:
        h = self.vision_model.embeddings(x)
        for layer in self.vision_model.encoder.layers[:-1]:
            h = layer(h)
        return h


# -- semantic decoder (BEiT v2 ViT) ----------------------------------------------------------------


class BeitAttention(nn.Module):
    """qkv projection without a k bias: separate learnable `q_bias` and `v_bias` (BEiT)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        q, k, v = (_heads(t, self.num_heads) for t in F.linear(x, self.qkv.weight, bias).chunk(3, dim=-1))
        return self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h l d -> b l (h d)"))


class BeitMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class BeitBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = BeitAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = BeitMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=1)


class SemanticDecoder(nn.Module):
    """BEiT-v2-style ViT on the quantized semantic map (patch size 1), mean-pooling variant:
    `fc_norm` on the patch tokens (no final `norm`, no head, no layer scale)."""

    def __init__(self, in_channels: int, width: int, depth: int, num_heads: int, grid: int):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, width))
        self.blocks = nn.ModuleList([BeitBlock(width, num_heads) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(width, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) semantic codes -> patch features (B, h*w, width)."""
        x = rearrange(self.patch_embed.proj(x), "b c h w -> b (h w) c")
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        pos = self.pos_embed[0]
        if x.shape[1] != pos.shape[0]:
            pos = torch.cat([pos[:1], interpolate_pos_grid(pos[1:], math.isqrt(x.shape[1] - 1))])
        x = x + pos
        for block in self.blocks:
            x = block(x)
        return self.fc_norm(x[:, 1:])
