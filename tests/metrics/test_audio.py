import pytest
import torch

from tok.core import TokError
from tok.metrics import audio

pesq_pkg = pytest.importorskip("pesq")
pystoi = pytest.importorskip("pystoi")


def _degraded(x, level=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    return x + level * torch.randn(x.shape, generator=g)


@pytest.mark.parametrize("mode", ["wb", "nb"])
def test_pesq_equals_the_package(speech, mode):
    ref = torch.stack([speech(seed=0), speech(seed=1)])
    deg = _degraded(ref)
    expected = [pesq_pkg.pesq(16000, ref[i].double().numpy(), deg[i].double().numpy(), mode) for i in range(2)]
    got = audio.pesq_per_item(ref, deg, 16000, mode)
    assert got.tolist() == pytest.approx(expected, abs=1e-9)
    assert audio.pesq(ref, deg, 16000, mode) == pytest.approx(sum(expected) / 2, abs=1e-9)
    assert audio.pesq(ref, ref, 16000, mode) > got.max()  # clean beats noisy


def test_stoi_equals_the_package(speech):
    ref, deg = speech(), _degraded(speech(), 0.1)
    for extended in (False, True):
        expected = pystoi.stoi(ref.double().numpy(), deg.double().numpy(), 16000, extended=extended)
        assert audio.stoi(ref, deg, 16000, extended=extended) == pytest.approx(expected, abs=1e-9)
    assert audio.stoi(ref, ref, 16000) == pytest.approx(1.0, abs=1e-6)


def test_pesq_resamples_other_rates(speech):
    import torchaudio.functional as AF

    ref = speech(rate=24000)
    deg = _degraded(ref)
    expected = pesq_pkg.pesq(16000, AF.resample(ref.double(), 24000, 16000).numpy(), AF.resample(deg.double(), 24000, 16000).numpy(), "wb")
    assert audio.pesq(ref, deg, 24000) == pytest.approx(expected, abs=1e-9)


def test_silent_or_empty_audio_is_refused(speech):
    x = speech()
    silent = torch.zeros_like(x)
    with pytest.raises(TokError, match="silent"):
        audio.pesq(silent, x, 16000)
    with pytest.raises(TokError, match="silent"):
        audio.stoi(silent, x, 16000)
    with pytest.raises(TokError, match="silent"):
        audio.si_sdr(silent, x)
    with pytest.raises(TokError, match="empty audio"):
        audio.pesq(torch.zeros(0), torch.zeros(0), 16000)
    with pytest.raises(TokError, match="mismatched lengths"):
        audio.stoi(x, x[:-5], 16000)
    with pytest.raises(TokError, match="cannot score"):  # PESQ error codes are never returned as scores
        audio.pesq(x[:800], x[:800], 16000)  # 50 ms: BufferTooShortError in the C code


def test_si_sdr_known_values(speech):
    s = speech().double()
    assert audio.si_sdr(s, 3.0 * s) > 100  # scale invariant
    n = torch.randn(s.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s0, n0 = s - s.mean(), n - n.mean()
    n0 = n0 - (n0 @ s0) / (s0 @ s0) * s0  # noise orthogonal to the signal
    n0 = n0 * (s0.norm() / n0.norm()) / 10 ** (10 / 20)  # exactly 10 dB below
    assert audio.si_sdr(s0, s0 + n0) == pytest.approx(10.0, abs=1e-6)


def test_mel_distance(speech):
    x = speech()
    assert audio.mel_distance(x, x, 16000) == 0.0
    small, large = audio.mel_distance(x, _degraded(x, 0.01), 16000), audio.mel_distance(x, _degraded(x, 0.1), 16000)
    assert 0 < small < large
    with pytest.raises(TokError, match="too short"):
        audio.mel_distance(x[:500], x[:500], 16000)
