import pytest
import torch

from tok.core import TokError
from tok.metrics.utmos import UTMOS, UTMOS22Strong, Wav2Vec2Config, load_utmos
from tok.metrics.utmos.model import DOMAIN_ID, JUDGE_ID

SMALL = Wav2Vec2Config(dim=48, layers=2, heads=4, ffn_dim=64, conv_dim=32, pos_kernel=16, pos_groups=4)


def _random(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight") or name.endswith(".2.weight") and "conv_layers.0" in name:
                p.add_(1.0)
    return model


def test_official_parameter_count():
    with torch.device("meta"):
        model = UTMOS22Strong()
    ssl = sum(p.numel() for p in model.wav2vec2.parameters())
    assert ssl == 94_371_712  # fairseq wav2vec_small without the pretraining heads
    blstm = 2 * (4 * 512 * (1024 + 512) + 2 * 4 * 512)
    head = 2 * 128 + blstm + (1024 * 2048 + 2048) + (2048 + 1)
    assert sum(p.numel() for p in model.parameters()) == ssl + head


def test_official_key_layouts_speechmos_and_lightning(tmp_path):
    model = _random(UTMOS22Strong(SMALL)).eval()
    native = model.state_dict()
    assert "wav2vec2.encoder.pos_conv.0.weight_g" in native and native["wav2vec2.encoder.pos_conv.0.weight_g"].shape == (1, 1, 16)
    assert "wav2vec2.feature_extractor.conv_layers.0.2.weight" in native and "projection.2.weight" in native
    torch.save(native, tmp_path / "speechmos.pt")
    # The UTMOS-demo Lightning layout: full embedding tables, fairseq prefixes.
    domain, judge = torch.randn(3, 128), torch.randn(3000, 128)
    domain[DOMAIN_ID], judge[JUDGE_ID] = native["domain_emb"][0], native["judge_emb"][0]
    lightning = {}
    for k, v in native.items():
        if k.startswith("wav2vec2."):
            lightning["feature_extractors.0.ssl_model." + k[9:]] = v
        elif k.startswith("blstm."):
            lightning["output_layers.0.decoder_rnn." + k[6:]] = v
        elif k.startswith("projection.0."):
            lightning["output_layers.1.net.0." + k[13:]] = v
        elif k.startswith("projection.2."):
            lightning["output_layers.1.net.3." + k[13:]] = v
    lightning["feature_extractors.1.embedding.weight"] = domain
    lightning["output_layers.0.judge_embedding.weight"] = judge
    # Lightning also pickles its hyper-parameters (a Hydra config object in the real file).
    hyper = {"cfg": __import__("fractions").Fraction(1, 3)}  # a class outside torch's allowlist
    torch.save({"state_dict": lightning, "epoch": 3, "global_step": 7459, "hyper_parameters": hyper}, tmp_path / "epoch=3-step=7459.ckpt")
    wave = torch.randn(1, 8000) * 0.1
    expected = model(wave)
    for name in ("speechmos.pt", "epoch=3-step=7459.ckpt"):
        loaded = load_utmos(tmp_path / name, SMALL)
        torch.testing.assert_close(loaded(wave), expected)
    evil = tmp_path / "evil.pt"
    torch.save({"x": torch.nn.ReLU()}, evil)  # no state_dict: refused, never unpickled with code
    with pytest.raises(TokError, match="safely"):
        load_utmos(evil, SMALL)
    del native["blstm.bias_hh_l0"]
    torch.save(native, tmp_path / "broken.pt")
    with pytest.raises(TokError, match=r"broken\.pt.*missing keys \(blstm\.bias_hh_l0\)"):
        load_utmos(tmp_path / "broken.pt", SMALL)


def test_padded_batch_scores_equal_single_items(speech):
    model = _random(UTMOS22Strong(SMALL)).eval()
    scorer = UTMOS(model=model, device="cpu", batch_size=4)
    clips = [speech(seconds=s, seed=i) for i, s in enumerate((0.5, 1.3, 0.77, 1.0))]
    batched = scorer(clips, 16000)
    alone = torch.stack([model(c[None]).double()[0] for c in clips])
    assert torch.allclose(batched, alone, atol=1e-4), (batched, alone)
    assert batched.std() > 1e-3  # the items really differ
    # Zero padding without the mask would change the score (the original model's behaviour).
    padded = torch.zeros(1, clips[1].numel())
    padded[0, : clips[0].numel()] = clips[0]
    assert abs(float(model(padded)[0]) - float(alone[0])) > 1e-3


def test_resampling_and_bad_input(speech):
    import torchaudio.functional as AF

    model = _random(UTMOS22Strong(SMALL)).eval()
    scorer = UTMOS(model=model, device="cpu")
    clip = speech(seconds=0.5, rate=24000)
    expected = model(AF.resample(clip.double(), 24000, 16000).float()[None])
    assert float(scorer(clip, 24000)[0]) == pytest.approx(float(expected[0]), abs=1e-5)
    with pytest.raises(TokError, match="silent"):
        scorer(torch.zeros(1, 16000), 16000)
    with pytest.raises(TokError, match="empty"):
        scorer([torch.zeros(0)], 16000)
    with pytest.raises(TokError, match="NaN"):
        scorer(torch.full((1, 16000), float("nan")), 16000)


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(TokError, match=r"utmos22_strong_step7459_v1\.pt.*tarepan/SpeechMOS"):
        UTMOS()
