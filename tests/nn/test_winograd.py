"""Winograd F(4x4, 3x3) convolutions: equal to the direct convolution within fp32 rounding, used only
where they are meant to be (fp32 CPU inference on maps big enough), state dicts unchanged."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tok.nn.winograd as winograd
from tok.nn.winograd import WinogradConv2d, filter_transform, use_winograd, winograd_conv3x3


def reference(x, weight, bias):
    return F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), padding=1)


@pytest.mark.parametrize(
    "batch, c_in, c_out, h, w, bias",
    [(2, 40, 48, 13, 9, True), (1, 64, 32, 8, 8, False), (3, 32, 36, 17, 30, True), (1, 8, 8, 1, 5, True)],
)
def test_equals_the_direct_convolution(batch, c_in, c_out, h, w, bias):
    torch.manual_seed(0)
    x = torch.randn(batch, c_in, h, w)
    weight = torch.randn(c_out, c_in, 3, 3) / (3 * c_in**0.5)
    b = torch.randn(c_out) if bias else None
    out = winograd_conv3x3(x, weight, b)
    expected = reference(x, weight, b)
    assert out.shape == expected.shape and out.dtype == torch.float32
    # fp32 rounding of the transforms, a few times a direct convolution's (which is ~4e-6 here).
    assert (out.double() - expected).abs().max() < 5e-5
    # Computed in NHWC: the result is a channels-last tensor, and a channels-last input gives the same.
    if h % 4 == 0 and w % 4 == 0:
        assert out.is_contiguous(memory_format=torch.channels_last)
    again = winograd_conv3x3(x.contiguous(memory_format=torch.channels_last), weight, b)
    torch.testing.assert_close(again, out, rtol=0, atol=0)


def test_strips_do_not_change_the_result(monkeypatch):
    """Many strips of one tile row each give the one-strip result exactly (the last strip overhangs
    the map, so its padding rows must be re-zeroed after the strips before it)."""
    torch.manual_seed(1)
    x, weight, bias = torch.randn(2, 16, 23, 21), torch.randn(16, 16, 3, 3) / 12, torch.randn(16)
    whole = winograd_conv3x3(x, weight, bias)
    assert (whole.double() - reference(x, weight, bias)).abs().max() < 5e-5
    monkeypatch.setattr(winograd, "STRIP_BYTES", 1)
    torch.testing.assert_close(winograd_conv3x3(x, weight, bias), whole, rtol=0, atol=0)


def test_filter_transform_is_g_g_gt():
    torch.manual_seed(2)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    g = torch.tensor(winograd._G, dtype=torch.float64)
    u = filter_transform(weight).view(6, 6, 3, 5)
    for o, i in [(0, 0), (4, 2), (2, 1)]:
        torch.testing.assert_close(u[:, :, i, o], g @ weight[o, i] @ g.T)


def convs():
    return nn.Sequential(
        nn.Conv2d(32, 32, 3, padding=1),  # eligible
        nn.Conv2d(32, 32, 3, stride=2, padding=1),  # strided: direct
        nn.Conv2d(32, 64, 1),  # 1x1: direct
        nn.Conv2d(64, 3, 3, padding=1),  # 3 output channels: direct
        nn.Conv2d(3, 64, 3, padding=1, padding_mode="reflect"),  # not zero padding: direct
    )


def test_use_winograd_switches_only_eligible_convolutions_and_keeps_keys():
    net = convs()
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    assert use_winograd(net) == 1
    assert [type(m) for m in net] == [WinogradConv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d, nn.Conv2d]
    assert use_winograd(net) == 0  # already switched
    state = net.state_dict()
    assert state.keys() == keys.keys() and all(torch.equal(state[k], keys[k]) for k in keys)
    fresh = convs()
    use_winograd(fresh)
    fresh.load_state_dict(keys)  # a plain Conv2d checkpoint loads unchanged
    assert use_winograd(net, on=False) == 1  # and back
    assert all(type(m) is nn.Conv2d for m in net)
    assert use_winograd(net, on=False) == 0


def test_a_switched_network_takes_its_input_in_nhwc_for_winograd_inference_only():
    """A residual sum keeps its first operand's layout, so the network is entered in NHWC, where
    Winograd reads and writes (see `_channels_last_entry`); once, however often it is switched."""
    seen = []
    net = convs()[:1]
    net[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(1, 32, 8, 8)
    use_winograd(net)
    use_winograd(net)
    assert len(net._forward_pre_hooks) == 1
    with torch.no_grad():
        net(x)
    net(x)  # with autograd: unchanged
    use_winograd(net, on=False)
    with torch.no_grad():
        net(x)
    assert seen == [True, False, False] and not net._forward_pre_hooks


@pytest.fixture
def calls(monkeypatch):
    """The input shapes of every `winograd_conv3x3` call made through `WinogradConv2d`."""
    seen = []
    real = winograd.winograd_conv3x3
    monkeypatch.setattr(winograd, "winograd_conv3x3", lambda *a: seen.append(a[0].shape) or real(*a))
    return seen


def test_winograd_path_is_taken_only_for_fp32_cpu_inference_on_big_maps(calls):
    torch.manual_seed(3)
    conv = nn.Conv2d(32, 32, 3, padding=1)
    use_winograd(conv)
    # 256 tiles of 4x4 (one 64² map, or four 32² maps) take Winograd; 225 do not.
    big, small, batch = torch.randn(1, 32, 64, 64), torch.randn(1, 32, 60, 60), torch.randn(4, 32, 32, 32)
    expected = F.conv2d(big, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        out = conv(big)
        conv(small)
        conv(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(big)
        conv.double()(big.double())
        conv.float()
    assert calls == [big.shape, batch.shape]
    torch.testing.assert_close(out, expected, rtol=0, atol=5e-5)
    # With autograd the direct path runs (and trains): gradients flow to the weights.
    y = conv(big)
    assert len(calls) == 2 and torch.equal(y, expected)
    y.sum().backward()
    assert conv.weight.grad is not None


def test_a_decoder_of_winograd_convolutions_stays_within_parity_tolerance(calls):
    """A residual stack like TokenFlow's pixel decoder: the error stays at fp32-rounding size."""
    from tok.tokenizers.tokenflow.pixel import Decoder

    torch.manual_seed(4)
    direct = Decoder(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=8).eval()
    fast = Decoder(ch=32, ch_mult=(1, 2), num_res_blocks=1, z_channels=8).eval()
    fast.load_state_dict(direct.state_dict())
    assert use_winograd(fast) > 0
    z = torch.randn(2, 8, 32, 32)
    with torch.inference_mode():
        expected = direct.double()(z.double())
        out = fast(z)
    assert len(calls) >= 4  # the 64² level's convolutions (the 32² level's are too small)
    assert (out.double() - expected).abs().max() < 1e-4 * max(1.0, expected.abs().max().item())
