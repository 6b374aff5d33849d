import pytest
import torch

from tok.codecs.xy_tokenizer import XYTokenizer, official_state_dict, preset
from tok.codecs.xy_tokenizer.layers import ResidualDownConv, WhisperLayer, sinusoids
from tok.core.errors import TokError

# Parameters per top-level module of the official 16 kHz configuration, from its constructors
# (the fact sheet's rounded figures: 87.0 / 28.4 / 87.0 / 29.5 / 28.3 / 3.2 / 33.1 / 9.4 / 87.0 / 126.8 M).
OFFICIAL_COUNTS = {
    "semantic_encoder": 87_002_112,
    "semantic_encoder_adapter": 28_349_952,
    "acoustic_encoder": 87_002_112,
    "pre_rvq_adapter": 29_530_368,
    "downsample": 28_317_696,
    "quantizer": 3_152_896,
    "post_rvq_adapter": 33_072_384,
    "upsample": 9_437_184,
    "acoustic_decoder": 87_001_424,
    "vocos": 126_754_946,
}


@pytest.fixture(scope="module")
def official_meta() -> XYTokenizer:
    with torch.device("meta"):
        return XYTokenizer(preset("official"))


def test_official_parameter_counts(official_meta):
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in official_meta.named_children() if name != "mel"}
    assert counts == OFFICIAL_COUNTS
    assert sum(counts.values()) == 519_621_074


def test_official_rates(official_meta):
    c = official_meta.config
    assert (c.frame_samples, c.frame_rate, c.tokens_per_second, c.bitrate, c.window_frames) == (1280, 12.5, 100.0, 1000.0, 375)
    layout = official_meta.layout
    assert layout.kind == "codebooks" and layout.vocab_sizes == (1024,) and layout.extra["num_quantizers"] == 8


def test_official_key_layout(official_meta):
    state = official_state_dict(official_meta)
    expected = {
        "semantic_encoder.conv1.weight": (768, 80, 3),
        "semantic_encoder.positional_embedding": (1500, 768),
        "semantic_encoder.layers.11.self_attn.q_proj.bias": (768,),
        "semantic_encoder_adapter.layers.3.fc1.weight": (3072, 768),
        "acoustic_encoder.layer_norm.weight": (768,),
        "pre_rvq_adapter.proj.weight": (768, 1536),
        "downsample.gate_proj.weight": (3072, 768, 4),
        "downsample.down_proj.weight": (3072, 3072),
        "quantizer.input_proj.weight_v": (512, 3072, 1),
        "quantizer.input_proj.weight_g": (512, 1, 1),
        "quantizer.quantizers.7.codebook": (1024, 512),
        "quantizer.quantizers.7.embed_avg": (1024, 512),
        "quantizer.quantizers.7.cluster_size": (1024,),
        "quantizer.quantizers.7.inited": (1,),
        "quantizer.output_proj.weight_v": (3072, 512, 1),
        "post_rvq_adapter.out_proj.weight": (3072, 768),
        "post_rvq_adapter.positional_embedding": (375, 768),
        "upsample.up_conv.weight": (3072, 768, 4),
        "acoustic_decoder.deconv2.weight": (768, 80, 3),
        "acoustic_decoder.layers.11.final_layer_norm.bias": (768,),
        "vocos.backbone.embed.weight": (512, 80, 7),
        "vocos.backbone.convnext.29.gamma": (512,),
        "vocos.backbone.final_layer_norm.weight": (512,),
        "vocos.head.out.weight": (642, 512),
        "vocos.head.istft.window": (640,),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert "semantic_encoder.layers.0.self_attn.k_proj.bias" not in state
    assert state["quantizer.quantizers.0.inited"].dtype == torch.bool
    assert not any("_codebook" in k or k.startswith("mel.") for k in state)


def test_whisper_layer_bias_convention():
    layer = WhisperLayer(32, 2, 64)
    names = {n for n, _ in layer.named_parameters()}
    assert "self_attn.k_proj.bias" not in names
    assert {"self_attn.q_proj.bias", "self_attn.v_proj.bias", "self_attn.out_proj.bias"} <= names


def test_whisper_layer_matches_explicit_attention():
    torch.manual_seed(0)
    layer = WhisperLayer(16, 2, 32).eval()
    x = torch.randn(1, 5, 16)
    a = layer.self_attn
    h = layer.self_attn_layer_norm(x)
    q = (a.q_proj(h) * 8**-0.5).view(1, 5, 2, 8).transpose(1, 2)
    k = a.k_proj(h).view(1, 5, 2, 8).transpose(1, 2)
    v = a.v_proj(h).view(1, 5, 2, 8).transpose(1, 2)
    att = (q @ k.transpose(-1, -2)).softmax(-1) @ v
    y = x + a.out_proj(att.transpose(1, 2).reshape(1, 5, 16))
    y = y + layer.fc2(torch.nn.functional.gelu(layer.fc1(layer.final_layer_norm(y))))
    torch.testing.assert_close(layer(x, None), y)


def test_sinusoids_whisper_formula():
    table = sinusoids(10, 8)
    inc = torch.log(torch.tensor(10000.0)) / 3
    t = torch.arange(10.0)[:, None] * torch.exp(-inc * torch.arange(4.0))[None]
    torch.testing.assert_close(table, torch.cat([t.sin(), t.cos()], 1))


def test_downsample_stacks_frames_frame_major_and_pads_time():
    down = ResidualDownConv(3, 4)
    torch.nn.init.zeros_(down.down_proj.weight)  # only the residual path is left
    x = torch.arange(2 * 3 * 6, dtype=torch.float32).reshape(2, 3, 6)  # (B, D, T=6) -> 2 frames
    out, lengths = down(x, torch.tensor([6, 5]))
    assert out.shape == (2, 12, 2) and lengths.tolist() == [1, 1]
    stacked = torch.cat([x[0, :, t] for t in range(4)])  # frame 0, then frame 1, ... (channel inner)
    torch.testing.assert_close(out[0, :, 0], torch.nn.functional.layer_norm(stacked, (12,)))
    padded = torch.cat([x[0, :, 4], x[0, :, 5], torch.zeros(3), torch.zeros(3)])
    torch.testing.assert_close(out[0, :, 1], torch.nn.functional.layer_norm(padded, (12,)))


def test_forward_shapes_and_commitment(tiny_xy):
    tiny_xy.train()
    out = tiny_xy(torch.randn(2, 5120) * 0.1)
    assert out.recon.shape == (2, 5120)
    assert out.losses["commitment"].ndim == 0 and out.losses["commitment"] > 0
    out.recon.square().mean().backward()
    assert tiny_xy.acoustic_encoder.conv1.weight.grad is not None


def test_batch_of_different_lengths_gives_each_item_its_own_tokens(tiny_xy):
    torch.manual_seed(3)
    lengths = [16000, 9000, 2561, 1280, 12345]
    wav = torch.randn(len(lengths), max(lengths)) * 0.3
    batch = tiny_xy.encode(wav, lengths=torch.tensor(lengths))
    for i, n in enumerate(lengths):
        alone = tiny_xy.encode(wav[i : i + 1, :n])
        frames = alone.sources[0]["num_frames"]
        assert frames == -(-n // 1280) == batch.sources[i]["num_frames"]
        assert torch.equal(batch.streams[0][i, :, :frames], alone.streams[0][0])
        assert (batch.streams[0][i, :, frames:] == 0).all()
    # Decoding the batch gives each item what it decodes to alone, at its exact length.
    audio = tiny_xy.decode(batch)
    assert audio.shape == (5, 16000)
    for i, n in enumerate(lengths):
        alone = tiny_xy.decode(tiny_xy.encode(wav[i : i + 1, :n]))
        assert alone.shape == (1, n)
        torch.testing.assert_close(audio[i, :n], alone[0], atol=1e-5, rtol=0)
        assert (audio[i, n:] == 0).all()


def test_official_frame_count_without_tail_padding(tiny_xy):
    wav = torch.randn(1, 3000) * 0.1
    assert tiny_xy.encode(wav, pad_tail=False).streams[0].shape == (1, 8, 2)
    assert tiny_xy.encode(wav).streams[0].shape == (1, 8, 3)
    with pytest.raises(TokError, match="shorter than one code frame"):
        tiny_xy.encode(wav[:, :1000], pad_tail=False)
    with pytest.raises(TokError, match="empty"):
        tiny_xy.encode(wav, lengths=torch.tensor([0]))


def test_long_audio_is_windowed_and_stitched(tiny_xy):
    # tiny windows are 4 s = 50 frames with 16 frames of right context (a third of 4 s, rounded).
    torch.manual_seed(4)
    wav = torch.randn(1, 16000 * 11 + 77) * 0.2
    tokens = tiny_xy.encode(wav)
    frames = tokens.sources[0]["num_frames"]
    assert frames == -(-wav.shape[1] // 1280) == tokens.streams[0].shape[2]
    window, keep = 50, 50 - 17
    first = tiny_xy.encode(wav[:, : window * 1280])
    assert torch.equal(tokens.streams[0][..., :keep], first.streams[0][..., :keep])
    second = tiny_xy.encode(wav[:, keep * 1280 : (keep + window) * 1280])
    assert torch.equal(tokens.streams[0][..., keep : 2 * keep], second.streams[0][..., :keep])
    # One pass (position tables extended) agrees away from the stitched windows' ends in most places.
    whole = tiny_xy.encode(wav, one_piece=True)
    assert whole.streams[0].shape == tokens.streams[0].shape
    audio = tiny_xy.decode(tokens)
    assert audio.shape == wav.shape and torch.isfinite(audio).all()
    # Windows of equal length decode in one batch: a second item does not change the first.
    both = tiny_xy.decode(tiny_xy.encode(torch.cat([wav, wav.flip(1)]), batch_size=3))
    torch.testing.assert_close(both[0], audio[0], atol=1e-5, rtol=0)


def test_tokens_from_another_model_are_refused(tiny_xy):
    tokens = tiny_xy.encode(torch.randn(1, 2560))
    tokens.model = "flextok-small"
    with pytest.raises(TokError, match="flextok-small"):
        tiny_xy.decode(tokens)


def test_mel_filters_match_librosa_slaney():
    librosa = pytest.importorskip("librosa")
    from tok.codecs.xy_tokenizer.mel import slaney_mel_filters

    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    torch.testing.assert_close(slaney_mel_filters(201, 80, 16000), torch.from_numpy(expected).double(), atol=1e-7, rtol=1e-5)


def test_silence_and_a_single_short_item(tiny_xy):
    silence = torch.zeros(1, 4000)
    tokens = tiny_xy.encode(silence)
    audio = tiny_xy.decode(tokens)
    assert tokens.streams[0].shape == (1, 8, 4) and audio.shape == (1, 4000) and torch.isfinite(audio).all()
    # 300 samples (under one 80-ms frame) still give one frame with the tail padded.
    assert tiny_xy.encode(torch.randn(1, 300) * 0.1).streams[0].shape == (1, 8, 1)
