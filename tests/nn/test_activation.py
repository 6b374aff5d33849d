"""`InferenceSiLU`: in place at inference with the same values; a plain SiLU under autograd."""

import copy

import torch
from torch import nn

from tok.nn.activation import InferenceSiLU
from tok.tokenizers.flextok.config import VAEConfig
from tok.tokenizers.flextok.model import VAE


def small_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8, latent_channels=4))


def with_plain_silu(vae: VAE) -> VAE:
    plain = copy.deepcopy(vae)
    for layer in plain.modules():
        if type(layer) is InferenceSiLU:
            layer.__class__ = nn.SiLU
    return plain


def test_flextok_vae_switches_its_silus_and_keeps_its_outputs():
    vae = small_vae().eval()
    assert sum(type(m) is InferenceSiLU for m in vae.modules()) > 0
    assert not any(type(m) is nn.SiLU for m in vae.modules())
    plain = with_plain_silu(vae)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        latents = vae.encode(x)
        assert torch.equal(latents, plain.encode(x))
        assert torch.equal(vae.decode(latents), plain.decode(latents))


def test_training_through_the_vae_keeps_autograd_working():
    # With autograd on, the SiLU must not overwrite the input its backward needs.
    vae = small_vae().train()
    plain = with_plain_silu(vae)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    vae.decode(vae.encode(x)).square().mean().backward()
    plain.decode(plain.encode(x)).square().mean().backward()
    for (name, p), q in zip(vae.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_inference_silu_works_in_place_only_without_autograd():
    x = torch.randn(4, 8)
    with torch.no_grad():
        y = InferenceSiLU()(x)
    assert y.data_ptr() == x.data_ptr()
    z = torch.randn(4, 8, requires_grad=True)
    assert InferenceSiLU()(z).data_ptr() != z.data_ptr()
