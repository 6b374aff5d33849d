"""FlexTok's flow samplers on a velocity field with a known exact solution, and through decode."""

import pytest
import torch

from tok.core import TokError
from tok.tokenizers.flextok import FlexTok, preset
from tok.tokenizers.flextok.samplers import SAMPLERS, integrate, network_calls

MU, SIGMA = 1.5, 0.3


def gaussian_velocity(x: torch.Tensor, t: float) -> torch.Tensor:
    """Exact E[noise - x0 | x_t] for x0 ~ N(MU, SIGMA^2), x_t = t noise + (1 - t) x0."""
    var = t**2 + (1 - t) ** 2 * SIGMA**2
    centred = x - (1 - t) * MU
    return (t - (1 - t) * SIGMA**2) / var * centred - MU


def exact_end(noise: torch.Tensor) -> torch.Tensor:
    # The probability-flow ODE of two Gaussians is the affine map between them.
    return MU + SIGMA * noise


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_converge_to_the_exact_flow(sampler):
    noise = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]  # (batch, channels), as schedulers expect
    errors = [float((integrate(gaussian_velocity, noise, n, sampler) - exact_end(noise)).abs().max()) for n in (4, 64)]
    assert errors[1] < errors[0] / 5 and errors[1] < 0.02, errors


def test_higher_order_samplers_beat_euler():
    noise = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    error = {s: float((integrate(gaussian_velocity, noise, 16, s) - exact_end(noise)).abs().max()) for s in SAMPLERS}
    for sampler in ("heun", "dpm++", "unipc"):
        assert error[sampler] < error["euler"] / 2, error


def test_euler_is_the_official_grid():
    calls = []
    integrate(lambda x, t: calls.append(t) or torch.zeros_like(x), torch.zeros(1), 4)
    assert calls == [1.0, 0.75, 0.5, 0.25]
    assert network_calls("euler", 4) == 4 and network_calls("heun", 4) == 7


def test_bad_sampler_and_steps():
    with pytest.raises(TokError, match="unknown sampler 'ddim'"):
        integrate(gaussian_velocity, torch.zeros(1), 2, "ddim")
    with pytest.raises(TokError, match="steps must be at least 1"):
        integrate(gaussian_velocity, torch.zeros(1), 0, "heun")


def test_decode_with_each_sampler():
    torch.manual_seed(0)
    model = FlexTok(preset("tiny")).eval()
    tokens = model.encode(torch.rand(1, 3, 64, 64) * 2 - 1, num_tokens=4)
    outs = {s: model.decode(tokens, steps=2, sampler=s) for s in SAMPLERS}
    for sampler, out in outs.items():
        assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all(), sampler
    # With CFG the guided velocity goes through every sampler too.
    assert model.decode(tokens, steps=2, guidance=2.0, sampler="dpm++").shape == (1, 3, 64, 64)
