"""Shared audio blocks: weight norm, SEANet encoder, ConvNeXt-1D, pos_net blocks, ISTFT head, Vocos."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tok.nn.convnext1d import AdaLayerNorm, ConvNeXtBlock1d
from tok.nn.istft import ISTFT, ISTFTHead
from tok.nn.resnet1d import AttnBlock1d, ResnetBlock1d
from tok.nn.seanet import SConv1d, SEANetEncoder
from tok.nn.vocos import Vocos, VocosBackbone
from tok.nn.weight_norm import WNConv1d, WNConv2d, WNConvTranspose1d


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("ours,theirs", [
    (lambda: WNConv1d(3, 5, 4, stride=2), lambda: nn.Conv1d(3, 5, 4, stride=2)),
    (lambda: WNConv2d(3, 5, (3, 1)), lambda: nn.Conv2d(3, 5, (3, 1))),
    (lambda: WNConvTranspose1d(3, 5, 4, stride=2), lambda: nn.ConvTranspose1d(3, 5, 4, stride=2)),
])
def test_weight_norm_matches_the_legacy_api_key_for_key(ours, theirs):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        legacy = torch.nn.utils.weight_norm(theirs())
    mine = ours()
    assert set(mine.state_dict()) == set(legacy.state_dict()) == {"weight_g", "weight_v", "bias"}
    state = {k: torch.randn_like(v) for k, v in legacy.state_dict().items()}
    legacy.load_state_dict(state)
    mine.load_state_dict(state)
    x = torch.randn(2, 3, 16) if not isinstance(mine, nn.Conv2d) else torch.randn(2, 3, 8, 4)
    torch.testing.assert_close(mine(x), legacy(x))


def test_sconv_padding_follows_the_encodec_rule():
    conv = SConv1d(1, 1, kernel_size=8, stride=4, weight_norm=False)
    for length in (1, 7, 16, 17, 100):
        x = torch.randn(1, 1, length)
        out = conv(x)
        assert out.shape[-1] == math.ceil(length / 4)
    # Explicit check: k=8, s=4 -> total pad 4, right 2, left 2, plus extra right pad to fill the last window.
    x = torch.randn(1, 1, 18)
    padded = F.pad(F.pad(x, (0, 0)), (2, 2 + 2), mode="reflect")  # n_frames = ceil((18-8+4)/4+1)=5 -> ideal 24
    ref = F.conv1d(padded, conv.conv.conv.weight, conv.conv.conv.bias, stride=4)
    torch.testing.assert_close(conv(x), ref)


@pytest.mark.parametrize("ratios,hop", [((8, 5, 4, 2), 320), ((6, 5, 5, 4), 600)])
def test_seanet_encoder_frames_and_official_key_shapes(ratios, hop):
    enc = SEANetEncoder(1, 16, 4, 1, ratios, lstm=1)
    assert enc.hop_length == hop
    for length in (1, hop, hop + 1, 3 * hop + 5):
        assert enc(torch.randn(2, 1, length)).shape == (2, 16, math.ceil(length / hop))
    with torch.device("meta"):
        full = SEANetEncoder(1, 512, 32, 1, ratios, lstm=2)
    shapes = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    first_down = 2 * ratios[-1]
    assert shapes["model.0.conv.conv.weight_v"] == (32, 1, 7)
    assert shapes["model.0.conv.conv.weight_g"] == (32, 1, 1)
    assert shapes["model.1.block.1.conv.conv.weight_v"] == (16, 32, 3)
    assert shapes["model.1.block.3.conv.conv.weight_v"] == (32, 16, 1)
    assert shapes["model.1.shortcut.conv.conv.weight_v"] == (32, 32, 1)
    assert shapes["model.3.conv.conv.weight_v"] == (64, 32, first_down)
    assert shapes["model.12.conv.conv.weight_v"] == (512, 256, 2 * ratios[0])
    assert shapes["model.13.lstm.weight_ih_l1"] == (2048, 512)
    assert shapes["model.15.conv.conv.weight_v"] == (512, 512, 7)
    # WavTokenizer fact sheet: encoder ~8.8 M (75 tok/s) and ~8.3 M (40 tok/s) parameters.
    assert count(full) == {320: 8_802_816, 600: 8_303_104}[hop]


@pytest.mark.parametrize("ratios", [(8, 5, 4, 2), (6, 5, 5, 4)])
def test_seanet_encoder_in_time_chunks_equals_one_piece(ratios):
    torch.manual_seed(0)
    enc = SEANetEncoder(1, 16, 4, 1, ratios, lstm=1).eval()
    stride, reach = enc.local_reach()
    assert stride == enc.hop_length and reach > 0
    with torch.inference_mode():
        for length in (stride * 40, stride * 40 + 7, stride * 13 + 1):
            x = torch.randn(3, 1, length)
            whole = enc(x)
            for chunk in (1, stride, 3 * stride + 11, 7 * stride):
                # Same values, including the reflect padding at both true ends; only float
                # rounding may differ (the conv kernels may sum in another order for other lengths).
                torch.testing.assert_close(enc(x, chunk_samples=chunk), whole, rtol=1e-5, atol=1e-6)
        # Short inputs (or big chunks) take the one-piece path.
        x = torch.randn(1, 1, stride * 3)
        assert torch.equal(enc(x, chunk_samples=10**6), enc(x))


def test_istft_same_padding_inverts_a_same_padded_stft():
    n_fft, hop, frames = 64, 16, 20
    x = torch.randn(2, frames * hop, dtype=torch.float64)
    pad = (n_fft - hop) // 2
    window = torch.hann_window(n_fft).double()
    padded = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(padded, n_fft, hop, window=window, center=False, return_complex=True)
    assert spec.shape[-1] == frames
    istft = ISTFT(n_fft, hop).double()
    y = istft(spec)
    assert y.shape == x.shape
    torch.testing.assert_close(y, x, atol=1e-6, rtol=0)  # window built in fp32


def test_istft_head_length_clip_and_fp32():
    head = ISTFTHead(dim=8, n_fft=32, hop_length=8)
    assert tuple(head.out.weight.shape) == (34, 8) and tuple(head.istft.window.shape) == (32,)
    audio = head(torch.randn(3, 10, 8))
    assert audio.shape == (3, 80) and audio.dtype == torch.float32
    # exp(log-magnitude) is clipped at 100: a huge log-magnitude gives bounded, finite audio.
    with torch.no_grad():
        head.out.weight.zero_()
        head.out.bias.zero_()
        head.out.bias[:17] = 1e4
    loud = head(torch.randn(1, 10, 8))
    assert torch.isfinite(loud).all() and loud.abs().max() <= 100 * 17 / 32 * 2 + 1e-3


def test_istft_window_survives_a_safetensors_round_trip(tmp_path):
    # Accelerate's save_state / load_state go through safetensors' save_model / load_model, which
    # refuse a buffer that views a longer storage (torch.hann_window does): training could not resume.
    from safetensors.torch import load_model, save_model

    head = ISTFTHead(dim=8, n_fft=16, hop_length=4)
    save_model(head, str(tmp_path / "head.safetensors"))
    fresh = ISTFTHead(dim=8, n_fft=16, hop_length=4)
    load_model(fresh, str(tmp_path / "head.safetensors"))
    torch.testing.assert_close(fresh.istft.window, torch.hann_window(16))


def test_attention_block_matches_the_explicit_softmax_formula():
    block = AttnBlock1d(32).eval()
    x = torch.randn(2, 32, 11)
    h = block.norm(x)
    q, k, v = block.q(h), block.k(h), block.v(h)
    w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * 32**-0.5, dim=2)  # (B, Tq, Tk)
    ref = x + block.proj_out(torch.bmm(v, w.transpose(1, 2)))
    torch.testing.assert_close(block(x), ref, atol=1e-5, rtol=1e-5)


def test_resnet_block_shapes_and_shortcut():
    assert ResnetBlock1d(32).nin_shortcut is None
    block = ResnetBlock1d(32, 64)
    assert block(torch.randn(2, 32, 9)).shape == (2, 64, 9)
    assert "nin_shortcut.weight" in block.state_dict()


def test_adaptive_layer_norm_uses_one_row_per_item():
    norm = AdaLayerNorm(4, 8)
    with torch.no_grad():
        norm.scale.weight.normal_()
        norm.shift.weight.normal_()
    x = torch.randn(2, 5, 8)
    both = norm(x, torch.tensor([1, 3]))
    torch.testing.assert_close(both[:1], norm(x[:1], torch.tensor([1])))
    torch.testing.assert_close(both[1:], norm(x[1:], torch.tensor([3])))
    # Initialised as a plain affine-free LayerNorm.
    fresh = AdaLayerNorm(4, 8)
    torch.testing.assert_close(fresh(x, torch.tensor([0])), F.layer_norm(x, (8,), eps=1e-6))


def test_convnext_block_plain_and_adaptive():
    plain = ConvNeXtBlock1d(16, 48, layer_scale_init_value=0.5)
    assert plain(torch.randn(2, 16, 7)).shape == (2, 16, 7)
    assert set(plain.state_dict()) >= {"dwconv.weight", "norm.weight", "pwconv1.weight", "pwconv2.weight", "gamma"}
    ada = ConvNeXtBlock1d(16, 48, layer_scale_init_value=0.5, adanorm_num_embeddings=4)
    assert "norm.scale.weight" in ada.state_dict() and "norm.weight" not in ada.state_dict()
    with pytest.raises(ValueError, match="cond_id"):
        ada(torch.randn(1, 16, 7))
    assert "gamma" not in ConvNeXtBlock1d(16, 48, layer_scale_init_value=None).state_dict()


def test_wavtokenizer_decoder_layout_and_parameter_counts():
    """WavTokenizer's `backbone.` / `head.` keys (fact sheet §4.3) and its ~62.0 M + ~1.0 M parameters."""
    with torch.device("meta"):
        backbone = VocosBackbone(512, 768, 2304, 12, adanorm_num_embeddings=4, use_pos_net=True)
        head75, head40 = ISTFTHead(768, 1280, 320), ISTFTHead(768, 2400, 600)
    shapes = {f"backbone.{k}": tuple(v.shape) for k, v in backbone.state_dict().items()}
    expected = {
        "backbone.embed.weight": (768, 512, 7),
        "backbone.norm.scale.weight": (4, 768),
        "backbone.norm.shift.weight": (4, 768),
        "backbone.pos_net.0.norm1.weight": (768,),
        "backbone.pos_net.0.conv1.weight": (768, 768, 3),
        "backbone.pos_net.2.q.weight": (768, 768, 1),
        "backbone.pos_net.2.proj_out.weight": (768, 768, 1),
        "backbone.pos_net.5.weight": (768,),
        "backbone.convnext.11.dwconv.weight": (768, 1, 7),
        "backbone.convnext.0.norm.scale.weight": (4, 768),
        "backbone.convnext.0.pwconv1.weight": (2304, 768),
        "backbone.convnext.0.pwconv2.weight": (768, 2304),
        "backbone.convnext.0.gamma": (768,),
        "backbone.final_layer_norm.weight": (768,),
    }
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert "backbone.convnext.12.gamma" not in shapes
    assert tuple(head75.out.weight.shape) == (1282, 768) and tuple(head40.out.weight.shape) == (2402, 768)
    assert tuple(head40.istft.window.shape) == (2400,)
    assert count(backbone) == 61_961_472
    assert (count(head75), count(head40)) == (985_858, 1_847_138)


def test_xy_tokenizer_vocos_layout_and_parameter_count():
    """XY-Tokenizer's `vocos.backbone.` / `vocos.head.` keys (fact sheet §4) and ~126.8 M parameters."""

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.vocos = Vocos(80, 512, 4096, 30, n_fft=640, hop_length=160)

    with torch.device("meta"):
        model = Holder()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["vocos.backbone.embed.weight"] == (512, 80, 7)
    assert shapes["vocos.backbone.norm.weight"] == (512,)
    assert shapes["vocos.backbone.convnext.29.dwconv.weight"] == (512, 1, 7)
    assert shapes["vocos.backbone.convnext.0.pwconv1.weight"] == (4096, 512)
    assert shapes["vocos.backbone.convnext.0.gamma"] == (512,)
    assert shapes["vocos.backbone.final_layer_norm.weight"] == (512,)
    assert shapes["vocos.head.out.weight"] == (642, 512)
    assert shapes["vocos.head.istft.window"] == (640,)
    assert not any("pos_net" in k or "scale.weight" in k for k in shapes)
    assert count(model) == 126_754_946
    assert model.vocos.backbone.convnext[0].gamma.shape == (512,)


def test_vocos_runs_end_to_end_with_exact_length():
    vocos = Vocos(6, 32, 64, 2, n_fft=40, hop_length=10, adanorm_num_embeddings=4, use_pos_net=True).eval()
    audio = vocos(torch.randn(2, 6, 9), torch.tensor([0]))
    assert audio.shape == (2, 90) and torch.isfinite(audio).all()
    # layer scale starts at 1 / num_layers
    assert torch.allclose(vocos.backbone.convnext[1].gamma, torch.full((32,), 0.5))
    with pytest.raises(ValueError, match="cond_id"):
        vocos(torch.randn(1, 6, 9))


@pytest.mark.parametrize("cond_id", [torch.tensor([1]), torch.tensor([0, 3, 2, 1, 3])])
def test_vocos_cpu_inference_in_item_groups_equals_one_pass(cond_id):
    backbone = VocosBackbone(6, 16, 32, 2, adanorm_num_embeddings=4).eval()
    for p in backbone.parameters():  # adaptive norms start at the identity: make the ids matter
        nn.init.normal_(p, std=0.3)
    x = torch.randn(5, 6, 20)
    whole = backbone(x, cond_id)  # grad enabled: one pass
    backbone.cpu_pass_bytes = 2 * 20 * 32 * 4  # two items per pass
    with torch.inference_mode():
        assert backbone.items_per_pass(x) == 2
        grouped = backbone(x, cond_id)
        backbone.cpu_pass_bytes = 1  # a single item larger than the budget still runs
        single = backbone(x, cond_id)
    torch.testing.assert_close(grouped, whole.detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(single, whole.detach(), rtol=0, atol=1e-6)
