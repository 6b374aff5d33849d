"""Dynamic int8 Linear / Conv1d (`tok.nn.int8`): close to the fp32 layer (but not equal: int8 really
ran), only where it is meant to run (fp32 CPU inference), weights repacked when they change,
state dicts and copies unaffected, switching back restores the fp32 layers exactly."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tok.nn.int8 as int8
from tok.nn.int8 import Int8Conv1d, Int8Linear, use_int8
from tok.nn.weight_norm import WNConv1d

pytestmark = pytest.mark.skipif(not int8.int8_supported(), reason="needs fbgemm (x86)")


def relative_error(out, expected):
    return ((out.double() - expected.double()).norm() / expected.double().norm()).item()


def test_linear_is_close_to_fp32_on_any_leading_shape():
    torch.manual_seed(0)
    layer = nn.Linear(128, 96)
    fast = copy.deepcopy(layer)
    assert use_int8(fast) == 1 and type(fast) is Int8Linear
    x = torch.randn(3, 40, 128)
    with torch.inference_mode():
        for inp in (x, x.transpose(0, 1), x[0]):  # 3-D, non-contiguous, 2-D
            out, expected = fast(inp), layer(inp)
            assert out.shape == expected.shape and out.dtype == torch.float32
            # 7-bit activations and 8-bit weights: ~2 % relative error on Gaussian data, not 0.
            assert 1e-3 < relative_error(out, expected) < 0.04


@pytest.mark.parametrize(
    "kernel, padding, stride, dilation", [(1, 0, 1, 1), (3, 1, 1, 1), (7, 3, 2, 1), (3, 2, 1, 2), (5, 0, 1, 1)]
)
def test_conv1d_is_close_to_fp32(kernel, padding, stride, dilation):
    torch.manual_seed(1)
    conv = nn.Conv1d(64, 80, kernel, padding=padding, stride=stride, dilation=dilation)
    fast = copy.deepcopy(conv)
    assert use_int8(fast) == 1 and type(fast) is Int8Conv1d
    x = torch.randn(2, 64, 101)
    with torch.inference_mode():
        out, expected = fast(x), conv(x)
    assert out.shape == expected.shape
    assert 1e-3 < relative_error(out, expected) < 0.04


def test_only_eligible_layers_switch_and_switching_back_restores_fp32():
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Linear(64, 64),  # eligible
        nn.Linear(64, 8),  # too narrow
        nn.Conv1d(64, 64, 3, padding=1),  # eligible
        nn.Conv1d(64, 64, 3, padding=1, groups=4),  # grouped
        nn.Conv1d(64, 64, 3, padding="same"),  # padding given as a string
        nn.Conv1d(64, 64, 3, padding=1, padding_mode="reflect"),  # not zero padding
        WNConv1d(64, 64, 3, padding=1),  # weight-normed: its own forward
    )
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 64, 30)
    inputs = [x.transpose(1, 2)] * 2 + [x] * 5  # (B, T, C) for the linears, (B, C, T) for the convs
    with torch.inference_mode():
        expected = [layer(inp) for layer, inp in zip(net, inputs)]
        assert use_int8(net) == 2
        assert [type(m) for m in net][:3] == [Int8Linear, nn.Linear, Int8Conv1d]
        assert use_int8(net) == 0  # already switched
        assert relative_error(net[0](inputs[0]), expected[0]) > 1e-3  # int8 ran
        assert net[0]._int8_packed is not None
        state = net.state_dict()
        assert state.keys() == keys.keys() and all(torch.equal(state[k], keys[k]) for k in keys)
        assert use_int8(net, enabled=False) == 2
        assert [type(m) for m in net][:3] == [nn.Linear, nn.Linear, nn.Conv1d]
        assert "_int8_packed" not in net[0].__dict__  # the packed copy is freed
        assert all(torch.equal(layer(inp), out) for layer, inp, out in zip(net, inputs, expected))


def test_int8_runs_only_in_fp32_cpu_inference(monkeypatch):
    calls = []
    real = int8.int8_product
    monkeypatch.setattr(int8, "int8_product", lambda x, packed: calls.append(x.shape) or real(x, packed))
    torch.manual_seed(3)
    layer = nn.Linear(64, 64)
    use_int8(layer)
    x = torch.randn(5, 64)
    expected = F.linear(x, layer.weight, layer.bias)
    with torch.no_grad():
        layer(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(x)
        assert torch.equal(layer.double()(x.double()), F.linear(x.double(), layer.weight, layer.bias))
        layer.float()
    assert calls == [x.shape]
    y = layer(x)  # autograd: the fp32 path, which trains
    assert torch.equal(y, expected)
    y.sum().backward()
    assert layer.weight.grad is not None


def test_new_weights_are_repacked():
    torch.manual_seed(4)
    layer = nn.Linear(64, 64)
    use_int8(layer)
    x = torch.randn(7, 64)
    other = nn.Linear(64, 64)
    with torch.inference_mode():
        first = layer(x)
        layer.load_state_dict(other.state_dict())
        second = layer(x)
        assert relative_error(second, other(x)) < 0.04
        assert relative_error(second, first) > 0.5


def test_copies_and_pickles_leave_the_packed_weight_behind():
    layer = nn.Linear(64, 64)
    use_int8(layer)
    x = torch.randn(3, 64)
    with torch.inference_mode():
        out = layer(x)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert type(clone) is Int8Linear and "_int8_packed" not in clone.__dict__
        with torch.inference_mode():
            assert torch.equal(clone(x), out)  # repacked from the same weights: the same result
