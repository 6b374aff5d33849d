"""Shared transformer pieces: per-segment AdaLN modulation gives what expanding the segment values
to every token gives (forward and backward), and the in-place inference MLP the autograd one."""

import pytest
import torch

from tok.nn.mlp import GatedMLP
from tok.nn.transformer import gated_residual, modulate_segments


def per_token(values, lengths):
    """(B, S, D) -> (B, L, D), segment s's row repeated over its tokens (the explicit form)."""
    return values.repeat_interleave(torch.tensor(lengths), dim=1)


@pytest.mark.parametrize("lengths", [(7,), (5, 3), (4, 1, 6), (2, 0, 3)])
def test_segment_ops_equal_the_expanded_formulas(lengths):
    torch.manual_seed(0)
    batch, dim, length = 3, 8, sum(lengths)
    x, y = torch.randn(batch, length, dim, requires_grad=True), torch.randn(batch, length, dim, requires_grad=True)
    shift, scale, gate = (torch.randn(batch, len(lengths), dim, requires_grad=True) for _ in range(3))

    out = modulate_segments(x, shift, scale, lengths) + gated_residual(x, y, gate, lengths)
    reference = x * (1 + per_token(scale, lengths)) + per_token(shift, lengths) + x + per_token(gate, lengths) * y
    torch.testing.assert_close(out, reference)

    grads = torch.autograd.grad(out.square().sum(), (x, y, shift, scale, gate))
    expected = torch.autograd.grad(reference.square().sum(), (x, y, shift, scale, gate))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_segments_are_not_interchangeable():
    # Swapping the two segments' values changes the output: the op follows the lengths.
    torch.manual_seed(0)
    x, shift, scale = torch.randn(2, 6, 4), torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    a = modulate_segments(x, shift, scale, (2, 4))
    b = modulate_segments(x, shift.flip(1), scale.flip(1), (2, 4))
    assert (a - b).abs().max() > 0.1


def test_gated_mlp_inference_path_equals_the_autograd_path():
    # Inference runs SiLU and the product in place; the values must be the autograd path's, and
    # the caller's input must stay untouched.
    torch.manual_seed(0)
    mlp = GatedMLP(16, 24)
    x = torch.randn(2, 5, 16)
    kept = x.clone()
    with torch.inference_mode():
        fast = mlp(x)
    reference = mlp(x)
    assert reference.requires_grad
    assert torch.equal(fast, reference.detach())
    assert torch.equal(x, kept)
