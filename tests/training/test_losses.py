import pytest
import torch

from tok.core import TokError
from tok.training import losses


def test_kl_divergence_of_standard_normal_is_zero():
    assert losses.kl_divergence(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)).item() == 0.0
    # KL(N(1, 1) || N(0, 1)) = 0.5 per element; 36 elements per sample.
    assert losses.kl_divergence(torch.ones(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)).item() == pytest.approx(18.0)


def test_hinge_losses():
    real, fake = torch.full((2, 1, 4, 4), 2.0), torch.full((2, 1, 4, 4), -2.0)
    assert losses.hinge_discriminator_loss(real, fake).item() == 0.0  # confident and right
    assert losses.hinge_discriminator_loss(fake, real).item() == pytest.approx(3.0)
    assert losses.hinge_generator_loss(fake).item() == 2.0


def test_patch_discriminator_shape():
    disc = losses.PatchDiscriminator(width=8)
    assert disc(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_lpips_without_backbone_weights_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(TokError, match=r"vgg16-397923af.pth .*--lpips-weight 0"):
        losses.LPIPSLoss()
