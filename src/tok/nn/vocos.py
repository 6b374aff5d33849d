"""The Vocos decoder (Siuzdak, arXiv 2306.00814): a ConvNeXt backbone at frame rate and an ISTFT
head, shared by WavTokenizer (adaptive LayerNorm + attention "pos_net") and XY-Tokenizer (plain).

Checkpoint layouts this module loads key-by-key (attribute names follow the official code):

* WavTokenizer: `backbone.embed`, `backbone.pos_net.{0..5}`, `backbone.norm.{scale,shift}`,
  `backbone.convnext.N.*`, `backbone.final_layer_norm`, `head.out`, `head.istft.window`.
* XY-Tokenizer: `vocos.backbone.embed`, `vocos.backbone.norm`, `vocos.backbone.convnext.N.*`,
  `vocos.backbone.final_layer_norm`, `vocos.head.out`, `vocos.head.istft.window` (a `Vocos`
  module stored as attribute `vocos`).
"""

from __future__ import annotations

from torch import Tensor, nn

from .convnext1d import AdaLayerNorm, ConvNeXtBlock1d
from .istft import ISTFTHead
from .passes import cpu_inference_in_passes
from .resnet1d import AttnBlock1d, ResnetBlock1d, group_norm


def pos_net(dim: int, dropout: float = 0.1) -> nn.Sequential:
    """WavTokenizer's position network: 2 ResNet blocks, attention, 2 ResNet blocks, GroupNorm."""
    return nn.Sequential(
        ResnetBlock1d(dim, dropout=dropout),
        ResnetBlock1d(dim, dropout=dropout),
        AttnBlock1d(dim),
        ResnetBlock1d(dim, dropout=dropout),
        ResnetBlock1d(dim, dropout=dropout),
        group_norm(dim),
    )


class VocosBackbone(nn.Module):
    """embed conv (k7) -> [pos_net] -> (Ada)LayerNorm -> N ConvNeXt blocks -> LayerNorm.

    Args:
        input_channels: width of the input features (WavTokenizer 512 latents; XY 80 mels).
        dim, intermediate_dim, num_layers: ConvNeXt width, MLP width, depth.
        layer_scale_init_value: default 1 / num_layers (the official default).
        adanorm_num_embeddings: None -> plain LayerNorms; else adaptive ones with that many ids.
        use_pos_net: add WavTokenizer's ResNet + attention position network after `embed`.
    Forward: x (B, input_channels, T), cond_id (B,) or (1,) when adaptive -> (B, T, dim).
    """

    def __init__(
        self,
        input_channels: int,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        layer_scale_init_value: float | None = None,
        adanorm_num_embeddings: int | None = None,
        use_pos_net: bool = False,
        pos_net_dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.adaptive = adanorm_num_embeddings is not None
        self.norm = AdaLayerNorm(adanorm_num_embeddings, dim) if self.adaptive else nn.LayerNorm(dim, eps=1e-6)
        scale = layer_scale_init_value or 1.0 / num_layers
        self.convnext = nn.ModuleList(
            ConvNeXtBlock1d(dim, intermediate_dim, scale, adanorm_num_embeddings) for _ in range(num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.apply(self._init_weights)
        # Built after the init pass, as in the official code (the pos_net keeps PyTorch's default init).
        self.pos_net = pos_net(dim, pos_net_dropout) if use_pos_net else None

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    # CPU inference runs a batch a few items per pass, at most this many bytes of ConvNeXt MLP
    # activations (frames x intermediate_dim x 4) each (see `tok.nn.passes`): XY-Tokenizer's
    # backbone (4096-wide MLP) took 1.97 s per 10-s clip at batch 8 in one pass, 1.76 s alone.
    cpu_pass_bytes = 16 * 2**20

    def forward(self, x: Tensor, cond_id: Tensor | None = None) -> Tensor:
        return cpu_inference_in_passes(self._forward, self.items_per_pass(x), x, cond_id)

    def items_per_pass(self, x: Tensor) -> int:
        mlp_width = self.convnext[0].pwconv1.out_features if len(self.convnext) else 1
        return max(1, self.cpu_pass_bytes // (x.shape[-1] * mlp_width * 4))

    def _forward(self, x: Tensor, cond_id: Tensor | None) -> Tensor:
        x = self.embed(x)
        if self.pos_net is not None:
            x = self.pos_net(x)
        h = x.transpose(1, 2)
        if self.adaptive:
            if cond_id is None:
                raise ValueError("this backbone uses adaptive LayerNorm: pass cond_id")
            h = self.norm(h, cond_id)
        else:
            h = self.norm(h)
        x = h.transpose(1, 2)
        for block in self.convnext:
            x = block(x, cond_id)
        return self.final_layer_norm(x.transpose(1, 2))


class Vocos(nn.Module):
    """Backbone + ISTFT head: features (B, C, T) -> waveform (B, T*hop).

    Args: as `VocosBackbone`, plus `n_fft`, `hop_length` and `padding` of the head.
    """

    def __init__(
        self,
        input_channels: int,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        n_fft: int,
        hop_length: int,
        padding: str = "same",
        layer_scale_init_value: float | None = None,
        adanorm_num_embeddings: int | None = None,
        use_pos_net: bool = False,
    ):
        super().__init__()
        self.backbone = VocosBackbone(
            input_channels, dim, intermediate_dim, num_layers, layer_scale_init_value, adanorm_num_embeddings, use_pos_net
        )
        self.head = ISTFTHead(dim, n_fft, hop_length, padding)

    def forward(self, features: Tensor, cond_id: Tensor | None = None) -> Tensor:
        return self.head(self.backbone(features, cond_id))
