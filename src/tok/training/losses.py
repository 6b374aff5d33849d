"""Reconstruction losses the tokenizer papers train with: L1/L2, LPIPS, KL, hinge GAN.

The VAE recipe (FlexTok's stage 0, SD-VAE style): L1 + w_p * LPIPS + w_kl * KL, plus a hinge
PatchGAN loss after `disc_start` steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import TokError


def lpips_backbone_file(net: str = "vgg") -> Path:
    """Where torchvision keeps the ImageNet backbone LPIPS needs (downloaded on first use online)."""
    names = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
    return Path(torch.hub.get_dir()) / "checkpoints" / names[net]


class LPIPSLoss(nn.Module):
    """LPIPS (Zhang et al., arXiv 1801.03924) through the `lpips` package, frozen, inputs in [-1, 1].

    `lpips` ships its linear heads but fetches the backbone from torchvision; offline, that file
    must already be in torch's hub cache, or this raises a TokError saying where to put it.
    """

    def __init__(self, net: str = "vgg"):
        super().__init__()
        backbone = lpips_backbone_file(net)
        if not backbone.is_file():
            raise TokError(
                f"LPIPS needs the {net} backbone weights at {backbone} (torchvision downloads them when online); "
                "put the file there, or train with --lpips-weight 0"
            )
        import lpips

        self.model = lpips.LPIPS(net=net, verbose=False).eval().requires_grad_(False)

    def forward(self, reference: Tensor, reconstruction: Tensor) -> Tensor:
        return self.model(reconstruction, reference).mean()


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (pix2pix, arXiv 1611.07004) as used by taming-transformers / SD-VAE:
    strided 4x4 convolutions with BatchNorm-free GroupNorm, one logit per patch."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        dim = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(dim, out, 4, stride, 1), nn.GroupNorm(min(32, out // 4), out), nn.LeakyReLU(0.2)]
            dim = out
        blocks.append(nn.Conv2d(dim, 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


@dataclass
class VAELossWeights:
    l1: float = 1.0
    l2: float = 0.0
    lpips: float = 0.1
    kl: float = 1e-6
    gan: float = 0.1
    disc_start: int = 5000
    # Initial posterior log-variance (None keeps diffusers' init); see train_vae.
    init_logvar: float | None = -6.0


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent elements, averaged over the batch."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()


class PatchDiscriminator3D(nn.Module):
    """The 3D PatchGAN of video tokenizers (TATS, OmniTokenizer's `video_discriminator`) over
    (B, C, T, H, W), one logit per space-time patch. Time is halved once only (3-frame kernels
    afterwards), so short clips such as 1 + 4k frames fit."""

    def __init__(self, channels: int = 3, width: int = 64, layers: int = 3):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv3d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        dim = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = (1, 2, 2) if i < layers else 1
            blocks += [nn.Conv3d(dim, out, (3, 4, 4), stride, 1), nn.GroupNorm(min(32, out // 4), out), nn.LeakyReLU(0.2)]
            dim = out
        blocks.append(nn.Conv3d(dim, 1, (3, 4, 4), 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def discriminator_features(discriminator: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """(logits, activations after each LeakyReLU) of a PatchDiscriminator(3D), for feature matching."""
    features = []
    for layer in discriminator.net:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            features.append(x)
    return x, features


def feature_matching_loss(real_features: list[Tensor], fake_features: list[Tensor]) -> Tensor:
    """Mean L1 between discriminator activations of real and reconstructed inputs (pix2pixHD)."""
    return sum(F.l1_loss(fake, real.detach()) for real, fake in zip(real_features, fake_features)) / len(real_features)
