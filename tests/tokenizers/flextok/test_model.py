from dataclasses import replace

import pytest
import torch

from tok.core import TokError, Tokens
from tok.tokenizers.flextok import FlexTok, preset
from tok.tokenizers.flextok.model import FlexTokDecoder, FlexTokEncoder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = FlexTok(preset("tiny"))
    for name, p in m.named_parameters():  # leave AdaLN-zero's identity start
        if "adaLN_modulation" in name or "dec_to_patches" in name:
            torch.nn.init.normal_(p, std=0.02)
    return m.eval()


@pytest.fixture
def images():
    return torch.rand(2, 3, 64, 64) * 2 - 1


def test_round_trip_shapes_and_determinism(model, images):
    tokens = model.encode(images)
    assert tokens.layout.kind == "sequence" and tokens.shapes == [(2, 16)]
    assert tokens.layout.vocab_sizes == (64000,)
    ids = tokens.streams[0]
    assert ids.dtype == torch.int64 and 0 <= ids.min() and ids.max() < 64000
    assert torch.equal(model.encode(images).streams[0], ids)  # eval mode is deterministic
    out = model.decode(tokens, steps=2)
    assert out.shape == images.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(model.decode(tokens, steps=2), out)  # fixed seed -> same image
    assert not torch.equal(model.decode(tokens, steps=2, seed=1), out)


def test_prefix_property(model, images):
    full = model.encode(images).streams[0]
    for k in (1, 5, 16):
        assert torch.equal(model.encode(images, num_tokens=k).streams[0], full[:, :k])


@pytest.mark.parametrize("k", [1, 5, 15])
def test_a_k_token_encode_runs_k_registers(model, k):
    torch.manual_seed(0)
    encoder = FlexTokEncoder(replace(model.config, encoder_depth=3)).eval()  # causal through several blocks
    latents = torch.randn(2, 16, 8, 8)
    with torch.inference_mode():
        full = encoder(latents)
        short = encoder(latents, k)
    assert short.shape == (2, k, full.shape[2])
    torch.testing.assert_close(short, full[:, :k], atol=1e-6, rtol=1e-5)


def test_fewer_tokens_change_the_decoding(model, images):
    full = model.encode(images)
    one = model.encode(images, num_tokens=1)
    assert not torch.allclose(model.decode(full, steps=1), model.decode(one, steps=1))


@pytest.mark.parametrize("bad", [0, 17, -3])
def test_token_count_is_checked(model, images, bad):
    with pytest.raises(TokError, match=r"number of tokens must be an integer in 1..16"):
        model.encode(images, num_tokens=bad)


def test_ids_to_codes_matches_quantizer(model, images):
    latents = model.vae.encode(images)
    codes, ids = model.encode_latents(latents)
    torch.testing.assert_close(model.quantizer.ids_to_codes(ids), codes)


def test_encoder_attention_mask():
    mask = FlexTokEncoder.attention_mask(num_patches=3, num_registers=2)
    expected = torch.tensor(
        [
            [1, 1, 1, 0, 0],  # patches see patches only
            [1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],  # register 0 sees patches and itself
            [1, 1, 1, 1, 1],  # register 1 sees patches and registers 0..1
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)


def test_registers_are_causal(model, images):
    """Changing register i's learned embedding leaves the outputs of registers < i unchanged."""
    latents = model.vae.encode(images)
    before = model.encoder(latents)
    registers = model.encoder.module_dict["enc_register_module"].registers
    saved = registers.detach().clone()
    with torch.no_grad():
        registers[10] += 5.0
    try:
        after = model.encoder(latents)
    finally:
        with torch.no_grad():
            registers.copy_(saved)
    torch.testing.assert_close(after[:, :10], before[:, :10])
    assert not torch.allclose(after[:, 10:], before[:, 10:])


def test_guidance_paths(model, images):
    tokens = model.encode(images, num_tokens=4)
    plain = model.decode(tokens, steps=2, guidance=1.0)
    cfg = model.decode(tokens, steps=2, guidance=3.0)
    apg = model.decode(tokens, steps=2, guidance=3.0, norm_guidance=True)
    scheduled = model.decode(tokens, steps=2, guidance=lambda t: 1.0)
    assert not torch.allclose(plain, cfg) and not torch.allclose(cfg, apg)
    torch.testing.assert_close(scheduled, plain)


@pytest.mark.parametrize("kept", [0, 1, 7, 14])
def test_collapsed_registers_give_the_full_sequence_velocity(model, kept):
    torch.manual_seed(0)
    decoder = FlexTokDecoder(replace(model.config, decoder_depth=3)).eval()  # identical through several blocks
    for name, p in decoder.named_parameters():
        if "adaLN_modulation" in name or "dec_to_patches" in name:
            torch.nn.init.normal_(p, std=0.02)
    noised, t = torch.randn(2, 16, 8, 8), torch.tensor([0.3, 0.8])
    codes = torch.randn(2, 16, len(model.config.fsq_levels))
    keep_k = torch.full((2,), max(kept, 1))
    registers = decoder.condition(codes, keep_k, torch.tensor([kept == 0] * 2))  # kept 0: the null condition
    short, repeats = decoder.collapse(registers, kept)
    assert short.shape[1] == kept + 1 and repeats == 16 - kept
    with torch.inference_mode():
        full = decoder(noised, t, registers)
        collapsed = decoder(noised, t, short, repeats)
        wrong = decoder(noised, t, short)  # the key counted once: a different velocity
    torch.testing.assert_close(collapsed, full, atol=1e-5, rtol=1e-5)
    assert (wrong - full).abs().max() > 1e-4  # 10x the tolerance above


def test_collapse_keeps_a_full_register_set(model):
    registers = torch.randn(2, 16, 8)
    short, repeats = model.decoder.collapse(registers, 16)
    assert short is registers and repeats == 1


@pytest.mark.parametrize("num_tokens, guidance", [(4, 1.0), (4, 3.0), (16, 3.0)])
def test_decode_with_collapsed_registers_matches_the_full_decode(model, images, num_tokens, guidance):
    tokens = model.encode(images, num_tokens=num_tokens)
    fast = model.decode(tokens, steps=2, guidance=guidance, norm_guidance=True)
    model.collapse_registers = False
    try:
        full = model.decode(tokens, steps=2, guidance=guidance, norm_guidance=True)
    finally:
        model.collapse_registers = True
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)


def test_collapsed_decode_under_bf16_autocast(model, images):
    # the key bias meets bf16 queries: the collapsed decode runs and stays at bf16's distance
    tokens = model.encode(images, num_tokens=4)
    reference = model.decode(tokens, steps=2, guidance=3.0)
    model.cpu_bf16 = True
    try:
        collapsed = model.decode(tokens, steps=2, guidance=3.0)
    finally:
        model.cpu_bf16 = False
    assert 0 < (collapsed - reference).abs().max() < 0.2


def test_batched_encode_equals_single(model, images):
    batched = model.encode(images).streams[0]
    single = torch.cat([model.encode(images[i : i + 1]).streams[0] for i in range(2)])
    assert torch.equal(batched, single)


def test_decode_checks_tokens(model, images):
    tokens = model.encode(images)
    other = Tokens(tokens.streams, tokens.layout, "flextok-small")
    with pytest.raises(TokError, match="made by model 'flextok-small'"):
        model.decode(other)
    with pytest.raises(TokError, match=r"must lie in \[0, 64000\)"):
        model.decode(torch.tensor([[64000]]))


def test_preprocess_resizes_and_crops(model):
    image = torch.rand(3, 90, 150)
    x = model.preprocess(image)
    assert x.shape == (1, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(TokError, match=r"expected images \(B, 3, 64, 64\)"):
        model.encode(torch.rand(1, 3, 32, 32))


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    m = FlexTok(preset("tiny")).train()
    latents = torch.randn(4, 16, 8, 8)
    opt = torch.optim.Adam([p for n, p in m.named_parameters() if not n.startswith("vae.")], lr=3e-3)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # same noise and t every step: the loss must go down
        loss = m.flow_loss(latents, keep_k=torch.full((4,), 16)).losses["flow"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert m.encoder.module_dict["enc_register_module"].registers.grad is not None  # gradients reach the encoder through FSQ


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, expected_millions",
    [("d12-d12", 257), ("d18-d18", 865), ("d18-d28", 2456)],
)
def test_official_presets_parameter_counts(name, expected_millions):
    """Trunk + adaLN parameters (VAE excluded) match the fact sheet's counts for the releases."""
    with torch.device("meta"):
        model = FlexTok(preset(name))
    trunk = sum(p.numel() for p in model.encoder.parameters()) + sum(p.numel() for p in model.decoder.parameters())
    assert abs(trunk / 1e6 - expected_millions) < 1.5
    vae = sum(p.numel() for p in model.vae.parameters())
    assert abs(vae / 1e6 - 83.8) < 0.5  # SD-style f8 c16 VAE


def test_large_batches_are_split_without_changing_results(model, images):
    """`max_batch` bounds the images per network pass; ids and decoded images stay the same."""
    batch = torch.cat([images, images.flip(-1), -images])  # 6 images
    tokens = model.encode(batch)
    decoded = model.decode(tokens, steps=2, guidance=2.0, norm_guidance=True)
    model.max_batch = 4
    try:
        assert torch.equal(model.encode(batch).streams[0], tokens.streams[0])
        torch.testing.assert_close(model.decode(tokens, steps=2, guidance=2.0, norm_guidance=True), decoded)
    finally:
        del model.max_batch  # back to the class default


def test_an_outer_cpu_autocast_reaches_the_trunks(model):
    # Accelerate's bf16 training on CPU opens an autocast around the loss; the model's own
    # switch (cpu_bf16 off) must not turn it off inside the trunks, or training runs in fp32.
    seen = []
    hook = model.decoder.module_dict["dec_to_patches"].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    latents = torch.randn(2, 16, 8, 8)
    try:
        with torch.no_grad():
            model.flow_loss(latents)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model.flow_loss(latents).losses["flow"]
    finally:
        hook.remove()
    assert seen == [torch.float32, torch.bfloat16]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
