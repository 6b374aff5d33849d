"""Audio discriminators, GAN / feature-matching / mel losses, and the WavTokenizer recipe end to end."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from tok.training.audio_discriminators import (
    MultiBandComplexDiscriminator,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
)
from tok.training.audio_losses import (
    MelReconstructionLoss,
    discriminator_hinge_loss,
    discriminator_lsgan_loss,
    feature_matching_loss,
    generator_hinge_loss,
    generator_lsgan_loss,
)


@pytest.mark.parametrize("make,count,maps", [
    (lambda: MultiPeriodDiscriminator(channels=(4, 8, 8, 8, 8)), 5, 5),
    (lambda: MultiResolutionDiscriminator(channels=4), 3, 6),
    (lambda: MultiBandComplexDiscriminator(channels=4), 3, 26),
])
def test_discriminators_return_logits_and_feature_maps_per_sub_discriminator(make, count, maps):
    disc = make()
    out = disc(torch.randn(2, 4001) * 0.1)
    assert len(out) == count
    for logits, fmaps in out:
        assert logits.ndim == 2 and logits.shape[0] == 2 and len(fmaps) == maps
        assert torch.equal(fmaps[-1].flatten(1), logits)
    # Gradients reach the input (the generator trains through them).
    audio = (torch.randn(1, 3000) * 0.1).requires_grad_()
    sum(l.sum() for l, _ in disc(audio)).backward()
    assert audio.grad.abs().sum() > 0


def test_period_discriminator_folds_by_its_period_and_conditions_with_zero_init():
    mpd = MultiPeriodDiscriminator(periods=(3,), channels=(4, 4, 4, 4, 4), num_embeddings=4)
    audio = torch.randn(2, 3001)
    plain = mpd(audio)[0][0]
    cond = mpd(audio, torch.tensor([1]))[0][0]
    torch.testing.assert_close(plain, cond)  # embeddings start at zero
    with torch.no_grad():
        mpd.discriminators[0].emb.weight.normal_()
    assert not torch.allclose(mpd(audio, torch.tensor([1]))[0][0], plain)
    # (3001 + 2 reflect-padded samples) / 3 = 1001 rows, through 4 stride-3 convs.
    assert mpd.discriminators[0](audio)[1][0].shape[-1] == 3


def fake_output(*values):
    return [(torch.tensor([[v]]), [torch.tensor([v])]) for v in values]


def test_hinge_and_least_squares_losses_on_known_values():
    real, fake = fake_output(2.0, 0.5), fake_output(-2.0, 0.0)
    # real: relu(1-2)=0, relu(1-0.5)=0.5; fake: relu(1-2)=0, relu(1+0)=1
    assert discriminator_hinge_loss(real, fake).item() == pytest.approx(1.5)
    assert generator_hinge_loss(fake).item() == pytest.approx(3.0 + 1.0)
    assert discriminator_lsgan_loss(real, fake).item() == pytest.approx(4.0 + 1.0 + 0.0 + 0.25)
    assert generator_lsgan_loss(fake).item() == pytest.approx(9.0 + 1.0)
    assert feature_matching_loss(real, real).item() == 0
    assert feature_matching_loss(real, fake).item() == pytest.approx(4.0 + 0.5)


def test_mel_loss_is_the_l1_of_clipped_log_mels():
    loss = MelReconstructionLoss(sample_rate=16000, n_fft=512, hop_length=128, n_mels=40)
    t = torch.arange(16000) / 16000
    a = torch.sin(2 * math.pi * 440 * t)[None]
    assert loss(a, a).item() == 0
    b = 0.5 * a
    # Halving the amplitude shifts every (unclipped) log-mel by log 2.
    assert loss(b, a).item() == pytest.approx(math.log(2), rel=1e-2)
    manual = F.l1_loss(loss.mel_spec(b).clamp(min=1e-7).log(), loss.mel_spec(a).clamp(min=1e-7).log())
    assert loss(b, a).item() == pytest.approx(manual.item())


@pytest.mark.slow
def test_wavtokenizer_recipe_trains_saves_and_loads(tmp_path):
    from tok.api import load
    from tok.codecs.wavtokenizer import WavTokenizer, preset
    from tok.training.wavtokenizer import WavTokenizerLossWeights, run

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        t = np.arange(8000) / 16000
        sf.write(data / f"s{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.standard_normal(8000)).astype(np.float32), 16000)
    model = WavTokenizer(preset("tiny"))
    weights = WavTokenizerLossWeights(mpd_channels=(4, 4, 4, 4, 4), mrd_channels=4, complex_channels=4)
    path = run(model, data, tmp_path / "run", steps=3, batch_size=2, crop_seconds=0.1, weights=weights, save_every=2, log_every=1)
    assert path.is_file()
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 3 and all(k in log[-1] for k in ("mel", "commit", "adv_mpd", "fm_mrd", "adv_complex", "d_mpd"))
    loaded = load("wavtokenizer-tiny", weights=path, device="cpu")
    assert bool(loaded.quantizer.vq._codebook.initted)
    assert loaded.quantizer.vq._codebook.embed.dtype == torch.float32
    tokens = loaded.encode(torch.randn(1, 2400) * 0.1)
    assert tokens.shapes == [(1, 1, 75)]
