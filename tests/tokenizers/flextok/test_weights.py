import json

import pytest
import torch
from safetensors.torch import save_file

import tok
from tok.core import TokError
from tok.core.weights import WeightSource, resolve_weights
from tok.tokenizers.flextok import FlexTok, load_weights, preset


def fresh_tiny():
    torch.manual_seed(5)
    return FlexTok(preset("tiny")).eval()


def test_loads_official_layout_folder_strictly(tiny_flextok_weights):
    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    assert model.name == "flextok-tiny" and model.weights_digest
    assert model.config.vae.scaling_factor == 0.5 and model.config.vae.shift_factor == 0.1
    # Same weights -> same ids and images as the model they were saved from.
    from safetensors.torch import load_file

    reference = fresh_tiny()
    reference.load_state_dict(load_file(str(tiny_flextok_weights / "model.safetensors")))
    reference.vae.config = model.vae.config
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(model.encode(images).streams[0], reference.encode(images).streams[0])


def test_official_keys_follow_the_release_layout():
    keys = set(fresh_tiny().state_dict())
    for key in [
        "encoder.module_dict.enc_patch_emb.patch_proj.weight",
        "encoder.module_dict.enc_posemb_module.posembs",
        "encoder.module_dict.enc_register_module.registers",
        "encoder.module_dict.enc_transformer.blocks.0.attn.wq.weight",
        "encoder.module_dict.enc_transformer.blocks.0.mlp.fc3.weight",
        "encoder.module_dict.enc_to_latents.proj.weight",
        "decoder.module_dict.dec_from_latents.proj.weight",
        "decoder.module_dict.dec_nested_dropout.dropout_mask_token",
        "decoder.module_dict.dec_latent_dropout.nullcond",
        "decoder.module_dict.dec_noise_patch_emb.patch_proj.weight",
        "decoder.module_dict.dec_time_embedder.mlp.0.weight",
        "decoder.module_dict.dec_time_embedder.mlp.2.weight",
        "decoder.module_dict.dec_transformer.blocks.0.adaLN_modulation.1.weight",
        "decoder.module_dict.dec_to_patches.adaLN_modulation.1.weight",
        "decoder.module_dict.dec_to_patches.proj.weight",
        "vae.vae.encoder.conv_in.weight",
        "vae.vae.quant_conv.weight",
    ]:
        assert key in keys, key
    assert not any(k.startswith("quantizer") for k in keys)  # FSQ has no persistent state


def test_official_d18_d28_shapes():
    with torch.device("meta"):
        model = FlexTok(preset("d18-d28"))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["decoder.module_dict.dec_transformer.blocks.27.adaLN_modulation.1.weight"] == (21504, 1792)
    assert shapes["decoder.module_dict.dec_transformer.blocks.0.mlp.fc1.weight"] == (4778, 1792)
    assert shapes["decoder.module_dict.dec_to_patches.adaLN_modulation.1.weight"] == (3584, 1792)
    assert shapes["encoder.module_dict.enc_posemb_module.posembs"] == (1, 1152, 16, 16)
    assert shapes["encoder.module_dict.enc_to_latents.proj.weight"] == (6, 1152)


def test_vae_from_separate_diffusers_folder(tmp_path):
    model = fresh_tiny()
    state = model.state_dict()
    (tmp_path / "vae").mkdir()
    save_file({k: v for k, v in state.items() if not k.startswith("vae.")}, str(tmp_path / "model.safetensors"))
    save_file({k[len("vae.vae.") :]: v.contiguous() for k, v in state.items() if k.startswith("vae.")}, str(tmp_path / "vae" / "diffusion_pytorch_model.safetensors"))
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"scaling_factor": 2.0}))
    target = FlexTok(preset("tiny"))
    load_weights(target, WeightSource("explicit", tmp_path))
    assert torch.equal(target.vae.vae.encoder.conv_in.weight, model.vae.vae.encoder.conv_in.weight)
    assert target.config.vae.scaling_factor == 2.0


def test_missing_and_unexpected_keys_are_errors(tmp_path, tiny_flextok_weights):
    from safetensors.torch import load_file

    state = load_file(str(tiny_flextok_weights / "model.safetensors"))
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    broken = dict(state)
    del broken["decoder.module_dict.dec_nested_dropout.dropout_mask_token"]
    broken["decoder.module_dict.extra.weight"] = torch.zeros(1)
    save_file(broken, str(tmp_path / "model.safetensors"))
    with pytest.raises(TokError, match=r"1 missing keys \(decoder.module_dict.dec_nested_dropout.dropout_mask_token\); 1 unexpected keys \(decoder.module_dict.extra.weight\)"):
        tok.load("flextok-tiny", weights=tmp_path)
    state["encoder.module_dict.enc_register_module.registers"] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(TokError, match=r"registers: checkpoint \(3, 3\), model \(16, 64\)"):
        tok.load("flextok-tiny", weights=tmp_path)


def test_hf_cache_resolution(tmp_path, monkeypatch, tiny_flextok_weights):
    """An official-style repo in the Hugging Face cache layout is found without network."""
    from huggingface_hub import constants

    import tok.tokenizers.flextok  # noqa: F401  (registers the cards)
    from tok.core import zoo

    def fake_repo(repo, files):
        root = tmp_path / ("models--" + repo.replace("/", "--"))
        snapshot = root / "snapshots" / "abc"
        snapshot.mkdir(parents=True)
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("abc")
        for name, data in files.items():
            (snapshot / name).write_bytes(data)
        return snapshot

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    card = zoo.get_card("flextok-d12-d12-in1k")
    with pytest.raises(TokError, match="no weights found for 'flextok-d12-d12-in1k'"):
        resolve_weights(card)
    main = fake_repo(card.hf_repo, {"model.safetensors": (tiny_flextok_weights / "model.safetensors").read_bytes()})
    vae = fake_repo("EPFL-VILAB/flextok_vae_c16", {"config.json": b'{"scaling_factor": 0.5}'})
    source = resolve_weights(card)
    assert source.kind == "hf-cache" and source.path == main and source.extra("vae") == vae
    # The alias takes the official model once it is cached.
    assert zoo.resolve_name("flextok", lambda c: c.name == "flextok-d12-d12-in1k") == "flextok-d12-d12-in1k"


def test_unknown_model_and_missing_weights():
    with pytest.raises(TokError, match="unknown model 'flextokk'; known models: .*flextok-small"):
        tok.load("flextokk")
    with pytest.raises(TokError, match="no weights found for 'flextok-tiny'"):
        tok.load("flextok-tiny")
    with pytest.raises(TokError, match="nowhere.safetensors: weights file or folder does not exist"):
        tok.load("flextok-tiny", weights="nowhere.safetensors")
