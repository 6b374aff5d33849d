"""The bundled image tokenizers of every family work with the shared pieces built beside them:
pFID's token perturbation (needs only the codebook) and the AR generator's patterns."""

from pathlib import Path

import pytest
import torch

import tok
from tok.generators.gpt import GPT
from tok.generators.gpt import preset as gpt_preset
from tok.generators.patterns import build_pattern
from tok.generators.sampling import SamplingOptions, sample_streams
from tok.metrics.perturb import perturb_tokens, quantizer_of

# (model, layout kind): TokenFlow and HieraTok use next-scale `scales`, OmniTokenizer a raster `grid`.
MODELS = [("tokenflow-small", "scales"), ("hieratok-small", "scales"), ("omnitokenizer-small", "grid")]


@pytest.fixture(scope="module", params=MODELS, ids=[m for m, _ in MODELS])
def encoded(request):
    name, kind = request.param
    model = tok.load(name, device="cpu")
    item, source = model.read_media(Path(__file__).parent / "data" / "photo.jpg")
    with torch.inference_mode():
        tokens = model.encode_items([item], [source])
    tokens = tokens[0] if isinstance(tokens, list) else tokens
    assert tokens.layout.kind == kind
    return model, tokens


@pytest.mark.slow
def test_perturbed_tokens_decode(encoded):
    model, tokens = encoded
    quantizer = quantizer_of(model)
    untouched = perturb_tokens(tokens, quantizer, alpha=0.0, delta=4)
    assert all(torch.equal(a, b) for a, b in zip(untouched.streams, tokens.streams))
    perturbed = perturb_tokens(tokens, quantizer, alpha=0.5, delta=4, seed=0)
    ids, moved = torch.cat([s.flatten() for s in tokens.streams]), torch.cat([s.flatten() for s in perturbed.streams])
    assert 0.3 < (ids != moved).float().mean() < 0.7
    assert torch.equal(moved, torch.cat([s.flatten() for s in perturb_tokens(tokens, quantizer, alpha=0.5, delta=4, seed=0).streams]))
    with torch.inference_mode():
        clean, noisy = model.decode(tokens), model.decode(perturbed)
    assert clean.shape == noisy.shape and torch.isfinite(noisy).all()
    assert (clean - noisy).abs().mean() > 1e-3


@pytest.mark.slow
def test_ar_generator_learns_the_tokens_and_samples_decodable_ones(encoded):
    model, tokens = encoded
    pattern = build_pattern(tokens.layout, [tuple(s.shape[1:]) for s in tokens.streams])
    seq = pattern.to_sequence(tokens.streams)
    assert all(torch.equal(a, b) for a, b in zip(pattern.from_sequence(seq), tokens.streams))
    torch.manual_seed(0)
    gpt = GPT(gpt_preset("tiny", num_classes=1), pattern)
    optimizer = torch.optim.Adam(gpt.parameters(), lr=1e-2)
    labels = torch.zeros(2, dtype=torch.long)
    first = None
    for _ in range(40):
        loss = gpt.loss(seq.expand(2, *seq.shape[1:]), labels)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first  # memorising one item: the loss falls fast
    streams = sample_streams(gpt.eval(), labels[:1], options=SamplingOptions(temperature=1.0), seed=0)
    assert [s.shape for s in streams] == [s.shape for s in tokens.streams]
    with torch.inference_mode():
        media = model.decode(model.make_tokens(streams, tokens.sources))
    assert media.shape == model.decode(tokens).shape
