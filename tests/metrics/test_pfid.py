import pytest
import torch

import tok
from tok.core import TokenLayout, Tokens, TokError
from tok.core.quantize import FSQQuantizer
from tok.metrics import fid as fidlib
from tok.metrics.perturb import perturb_tokens, pfid


def _tokens(q, shape=(4, 64), seed=0):
    ids = torch.randint(0, q.vocab_size, shape, generator=torch.Generator().manual_seed(seed))
    return Tokens([ids], TokenLayout("sequence", (q.vocab_size,), (("n",),)), "m")


def test_perturbation_rate_neighbours_and_seed():
    q = FSQQuantizer((8, 8, 8, 5, 5, 5))
    tokens = _tokens(q, (8, 256))
    assert torch.equal(perturb_tokens(tokens, q, alpha=0.0).streams[0], tokens.streams[0])
    out = perturb_tokens(tokens, q, alpha=0.3, delta=4, seed=1)
    changed = out.streams[0] != tokens.streams[0]
    assert 0.25 < changed.float().mean() < 0.35  # a fraction alpha changes
    # Every replacement is one of the 4 nearest other lattice points.
    nearest = q.neighbours(tokens.streams[0], 5)[..., 1:]
    assert (nearest[changed] == out.streams[0][changed][:, None]).any(-1).all()
    assert torch.equal(perturb_tokens(tokens, q, alpha=0.3, delta=4, seed=1).streams[0], out.streams[0])
    assert not torch.equal(perturb_tokens(tokens, q, alpha=0.3, delta=4, seed=2).streams[0], out.streams[0])
    assert (perturb_tokens(tokens, q, alpha=1.0, delta=1).streams[0] != tokens.streams[0]).all()
    # RobustTok's draw includes the code itself: about alpha * (delta - 1) / delta change.
    rate = (perturb_tokens(tokens, q, alpha=1.0, delta=2, include_self=True).streams[0] != tokens.streams[0]).float().mean()
    assert 0.4 < rate < 0.6
    with pytest.raises(TokError, match="alpha"):
        perturb_tokens(tokens, q, alpha=1.5)


def test_pfid_at_alpha_zero_equals_rfid(tiny_flextok_weights, inception_weights):
    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    opts = {"weights": inception_weights, "device": "cpu", "layer": "64"}
    x = model.preprocess(images)
    recon = model.postprocess(model.decode(model.encode(x)))
    rfid = fidlib.rfid(model.postprocess(x), recon, **opts)
    assert pfid(model, images, alpha=0.0, **opts) == pytest.approx(rfid, rel=1e-9)
    with pytest.raises(TokError, match="at least 2"):
        pfid(model, images[:1], **opts)


@pytest.mark.slow
def test_pfid_grows_with_alpha_on_the_bundled_flextok(inception_weights):
    from tok.core.media import read_image

    model = tok.load("flextok-small", device="cpu")
    photo, _ = read_image(__import__("pathlib").Path(__file__).parents[1] / "data" / "photo.jpg")
    # Nine overlapping crops of a real photograph (a 3 x 3 grid), so the tokens are those of
    # natural images; with only four, the Frechet distance of 64-dim features is mostly
    # estimation noise and its order over alpha flipped with a retrained model.
    h, w = photo.shape[1:]
    s = min(h, w) // 2
    images = [photo[:, top : top + s, left : left + s] for top in (0, (h - s) // 2, h - s) for left in (0, (w - s) // 2, w - s)]
    opts = {"weights": inception_weights, "device": "cpu", "layer": "64"}
    # delta = 1 000 nearest codes (of 64 000): with delta = 64 the 64-token model's decodes moved
    # less than the estimation noise (2.35, 2.47, 2.40); here 2.35 < 2.72 < 3.44.
    values = [pfid(model, images, alpha=a, delta=1000, **opts) for a in (0.0, 0.5, 1.0)]
    assert values[0] < values[1] < values[2], values
