"""WavTokenizer: official configs and parameter counts, checkpoint loading, lengths, batching, chunking."""

import math

import pytest
import torch

from tok.api import load
from tok.codecs.wavtokenizer import WavTokenizer, from_official, preset, to_official
from tok.core import TokError
from tok.core.weights import WeightSource


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,params,hop,bps", [("75", 71_750_146, 320, 900.0), ("40", 72_111_714, 600, 480.0)])
def test_official_configs_build_with_official_parameter_counts(name, params, hop, bps):
    config = preset(name)
    assert (config.sample_rate, config.codebook_size, config.hop_length, config.bitrate) == (24000, 4096, hop, bps)
    with torch.device("meta"):
        model = WavTokenizer(config)
    # Fact sheet §3.5: encoder ~8.8 M / 8.3 M, backbone ~62.0 M, head ~1.0 M / 1.8 M, ~72 M in all.
    assert count(model) == params
    assert count(model.backbone) == 61_961_472
    buffers = dict(model.named_buffers())
    assert tuple(buffers["feature_extractor.encodec.quantizer.vq._codebook.embed"].shape) == (1, 4096, 512)
    official = to_official({k: torch.empty(v.shape, device="meta") for k, v in model.state_dict().items()})
    shapes = {k: tuple(v.shape) for k, v in official.items()}
    assert shapes["feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"] == (4096, 512)
    assert shapes["feature_extractor.encodec.quantizer.vq.layers.0._codebook.cluster_size"] == (4096,)
    assert shapes["feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited"] == (1,)
    assert shapes["head.out.weight"] == ((1282 if name == "75" else 2402), 768)
    assert shapes["feature_extractor.encodec.encoder.model.6.conv.conv.weight_v"] == ((128, 64, 8) if name == "75" else (128, 64, 10))


def test_layout_is_one_codebook_per_frame():
    model = WavTokenizer(preset("tiny")).eval()
    layout = model.layout
    assert layout.kind == "codebooks" and layout.vocab_sizes == (64,) and layout.axes == (("q", "t"),)
    assert layout.rates["tokens_per_second"] == 750 and layout.extra["sample_rate"] == 24000
    tokens = model.encode(torch.randn(3, 1000) * 0.1)
    assert tokens.shapes == [(3, 1, math.ceil(1000 / 32))]
    assert model.decode(tokens).shape == (3, 32 * 32)


def random_model(seed: int = 0) -> WavTokenizer:
    torch.manual_seed(seed)
    model = WavTokenizer(preset("tiny"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("gamma", "shift.weight")):
                p.normal_(0, 0.1)
        codebook = model.quantizer.vq._codebook
        codebook.embed.normal_(0, 0.05)
        codebook.embed_avg.copy_(codebook.embed)
        codebook.cluster_size.fill_(3.0)
        codebook.initted.fill_(True)
    return model.eval()


def lightning_checkpoint(model: WavTokenizer, path, extra_state: dict | None = None):
    """A PyTorch-Lightning-style .ckpt with the official key layout, including the keys the
    official loader filters out (unused SEANet decoder, discriminators, mel-loss buffers)."""
    state = to_official(model.state_dict())
    state["feature_extractor.encodec.decoder.model.0.conv.conv.weight_v"] = torch.randn(16, 16, 7)
    state["multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["melspec_loss.mel_spec.mel_scale.fb"] = torch.randn(513, 100)
    state.update(extra_state or {})
    torch.save(
        {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.8.6", "state_dict": state,
         "optimizer_states": [], "lr_schedulers": [], "hyper_parameters": {"sample_rate": 24000}},
        path,
    )
    return path


def test_official_lightning_checkpoint_loads_strictly_and_reproduces_tokens(tmp_path):
    model = random_model()
    audio = torch.randn(2, 2000) * 0.2
    expected = model.encode(audio)
    ckpt = lightning_checkpoint(model, tmp_path / "WavTokenizer_tiny.ckpt")
    loaded = load("wavtokenizer-tiny", weights=ckpt, device="cpu")
    assert loaded.name == "wavtokenizer-tiny" and loaded.weights_digest
    tokens = loaded.encode(audio)
    assert torch.equal(tokens.streams[0], expected.streams[0])
    torch.testing.assert_close(loaded.decode(tokens), model.decode(expected))


def test_loaded_inited_flag_keeps_kmeans_from_running(tmp_path, monkeypatch):
    import vector_quantize_pytorch.vector_quantize_pytorch as vqp

    ckpt = lightning_checkpoint(random_model(), tmp_path / "w.ckpt")
    loaded = load("wavtokenizer-tiny", weights=ckpt, device="cpu")
    assert bool(loaded.quantizer.vq._codebook.initted)

    def no_kmeans(*args, **kwargs):
        raise AssertionError("k-means ran on a loaded codebook")

    monkeypatch.setattr(vqp, "kmeans", no_kmeans)
    loaded.train()
    loaded(torch.randn(2, 640) * 0.1)  # a training-mode forward: EMA update, no re-initialisation
    # and the mapping is a real one: an official file with inited = 0 loads as not initialised.
    state = to_official(random_model().state_dict())
    state["feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited"] = torch.zeros(1)
    assert not bool(from_official(state)["feature_extractor.encodec.quantizer.vq._codebook.initted"])


def test_checkpoint_problems_are_named(tmp_path):
    model = random_model()
    missing = to_official(model.state_dict())
    del missing["backbone.convnext.1.gamma"]
    torch.save({"state_dict": missing}, tmp_path / "missing.ckpt")
    with pytest.raises(TokError, match=r"missing keys \(backbone.convnext.1.gamma\)"):
        load("wavtokenizer-tiny", weights=tmp_path / "missing.ckpt")
    with pytest.raises(TokError, match=r"unexpected keys \(backbone.extra.weight\)"):
        load("wavtokenizer-tiny", weights=lightning_checkpoint(model, tmp_path / "extra.ckpt", {"backbone.extra.weight": torch.ones(1)}))
    wrong = to_official(model.state_dict())
    wrong["head.out.weight"] = torch.zeros(10, 32)
    torch.save({"state_dict": wrong}, tmp_path / "shape.ckpt")
    with pytest.raises(TokError, match="other shapes"):
        load("wavtokenizer-tiny", weights=tmp_path / "shape.ckpt")


class NotATensor:
    pass


def test_checkpoints_with_arbitrary_objects_are_refused_safely(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    state = to_official(random_model().state_dict())
    torch.save({"state_dict": state, "callbacks": NotATensor()}, path)
    with pytest.raises(TokError, match="safe loading"):
        load("wavtokenizer-tiny", weights=path)


def test_items_of_different_lengths_get_the_tokens_they_get_alone():
    model = random_model()
    waves = [torch.randn(n) * 0.2 for n in (1000, 2500, 1000, 777)]
    sources = [{"num_samples": n} for n in (1000, 2500, 1000, 777)]
    together = model.encode_items(waves, sources)
    assert together.shapes == [(4, 1, math.ceil(2500 / 32))]
    for b, wave in enumerate(waves):
        alone = model.encode(wave[None]).streams[0][0, 0]
        assert together.sources[b]["num_frames"] == alone.numel()
        assert torch.equal(together.streams[0][b, 0, : alone.numel()], alone)
    # Decoding the padded batch gives each item what it decodes to alone.
    decoded = model.decode(together)
    for b, wave in enumerate(waves):
        alone = model.decode(model.encode(wave[None]))[0]
        torch.testing.assert_close(decoded[b, : alone.numel()], alone)
        assert not decoded[b, alone.numel():].any()


def test_inference_slicing_gives_the_ids_of_one_training_pass(monkeypatch):
    # encode runs the convolutions in time slices and the code search in slices of frames;
    # both must give exactly the ids of the plain (training) forward.
    import tok.codecs.wavtokenizer.model as wavtokenizer_model

    monkeypatch.setattr(wavtokenizer_model, "SAMPLES_PER_PASS", 700)
    monkeypatch.setattr(wavtokenizer_model, "FRAMES_PER_SEARCH", 5)
    model = random_model()
    audio = torch.randn(3, 32 * 60 + 9) * 0.2
    with torch.inference_mode():
        plain = model.quantize(model.encode_latents(audio)).ids
    assert torch.equal(model.encode(audio).streams[0][:, 0], plain)


def test_chunked_encoding_differs_only_near_chunk_borders():
    """Chunks of 0.25 s (188 frames) with 15 frames of context, against one-piece encoding."""
    model = random_model()
    one_piece = random_model()
    one_piece.config = preset("tiny", chunk_seconds=1000.0)
    torch.manual_seed(3)
    t = torch.arange(24000 * 2) / 24000
    audio = 0.3 * torch.sin(2 * math.pi * 150 * t) * torch.sin(2 * math.pi * 1.3 * t) + 0.05 * torch.randn_like(t)
    chunked = model.encode(audio[None]).streams[0][0, 0]
    whole = one_piece.encode(audio[None]).streams[0][0, 0]
    assert chunked.shape == whole.shape == (1500,)
    plan = model._chunk_plan(1500)
    assert len(plan) == 8
    borders = torch.tensor([keep_start for _, _, keep_start, _ in plan[1:]])
    differ = (chunked != whole).nonzero()[:, 0]
    distance = (differ[:, None] - borders[None]).abs().min(dim=1).values if differ.numel() else torch.zeros(0)
    # Measured margin: every differing token lies within 8 frames of a chunk border.
    assert distance.numel() == 0 or distance.max() <= 8
    assert differ.numel() <= 0.05 * 1500
    # Decoding in chunks gives the same length and stays close to one-piece decoding.
    assert model.decode_id_list([whole])[0].shape == (1500 * 32,)


def test_write_media_restores_the_source_rate_and_length(tmp_path):
    import soundfile as sf

    from tok.core.media.audio import read_audio

    model = random_model()
    src = tmp_path / "in.wav"
    sf.write(src, (torch.randn(16001, 2) * 0.1).numpy(), 16000)
    item, source = model.read_media(src)
    assert source["source_sample_rate"] == 16000 and source["channels"] == 2
    assert item.shape == (source["num_samples"],) and source["sample_rate"] == 24000
    tokens = model.encode_items([item], [source])
    out = model.write_media(model.decode(tokens)[0], tmp_path / "out.wav", tokens.sources[0])
    _, info = read_audio(out)
    assert (info.sample_rate, info.num_samples, info.channels) == (16000, 16001, 1)


def test_tokens_from_another_model_are_refused():
    model = random_model()
    other = random_model(seed=1)
    other.name = "flextok-small"
    tokens = other.encode(torch.randn(1, 500))
    with pytest.raises(TokError, match="flextok-small"):
        model.decode(tokens)


def test_bundled_model_is_registered_with_rates():
    from tok.api import list_models

    cards = {c.name: c for c in list_models()}
    card = cards["wavtokenizer-small"]
    assert card.modality == "audio" and card.bundled == "wavtokenizer-small.safetensors"
    assert "75 tokens/s" in card.tokens and "0.9 kbps" in card.tokens
    assert "40 tokens/s" in cards["wavtokenizer-small-600-24k-4096"].tokens


def test_weight_source_folder_with_one_checkpoint(tmp_path):
    from tok.codecs.wavtokenizer import load_weights

    model = random_model()
    folder = tmp_path / "snap"
    folder.mkdir()
    lightning_checkpoint(model, folder / "model.ckpt")
    fresh = WavTokenizer(preset("tiny"))
    load_weights(fresh, WeightSource("explicit", folder))
    assert torch.equal(fresh.quantizer.vq._codebook.embed, model.quantizer.vq._codebook.embed)


def test_cpu_bf16_mode_stays_close_to_fp32():
    """Opt-in bf16 on CPU: the networks run under bf16 autocast, the code search and the ISTFT in fp32."""
    model = random_model()
    audio = torch.randn(2, 4000) * 0.3
    reference = model.encode(audio)
    exact = model.decode(reference)
    model.cpu_bf16 = True
    try:
        fast = model.encode(audio)
        recon = model.decode(reference)
    finally:
        model.cpu_bf16 = False
    assert (fast.streams[0] == reference.streams[0]).float().mean() > 0.8
    assert recon.dtype == torch.float32 and recon.shape == exact.shape
    assert 0 < (recon - exact).abs().max() < 0.05 * exact.abs().max()
