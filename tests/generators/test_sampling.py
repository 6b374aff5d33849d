import pytest
import torch
from test_patterns import layouts

from tok.core import TokenLayout, TokError
from tok.generators.gpt import GPT, preset
from tok.generators.patterns import build_pattern
from tok.generators.sampling import (
    SamplingOptions,
    filter_logits,
    sample,
    sample_streams,
)


def random_model(layout, shapes, codebook_pattern="delay", num_classes=3):
    torch.manual_seed(0)
    model = GPT(preset("tiny", num_classes=num_classes), build_pattern(layout, shapes, codebook_pattern))
    torch.nn.init.normal_(model.output.weight, std=0.5)  # non-uniform logits
    return model.eval()


@pytest.mark.parametrize("layout,shapes,codebook_pattern", list(layouts()))
def test_cache_and_no_cache_give_identical_tokens(layout, shapes, codebook_pattern):
    model = random_model(layout, shapes, codebook_pattern)
    labels = torch.tensor([0, 1, 2])
    options = SamplingOptions(temperature=1.0, top_k=20, top_p=0.9, cfg=2.0)
    cached = sample(model, labels, options=options, seed=7, use_cache=True)
    uncached = sample(model, labels, options=options, seed=7, use_cache=False)
    assert torch.equal(cached, uncached)
    streams = model.pattern.from_sequence(cached)
    for stream, shape, vocab in zip(streams, shapes, layout.vocab_sizes):
        assert stream.shape == (3, *shape) and 0 <= int(stream.min()) and int(stream.max()) < vocab
    # Seeded: the same seed repeats, another seed differs.
    assert torch.equal(cached, sample(model, labels, options=options, seed=7))
    assert not torch.equal(cached, sample(model, labels, options=options, seed=8))


def test_delay_sampling_keeps_special_slots():
    model = random_model(TokenLayout("codebooks", (9,), (("q", "t"),)), [(3, 5)])
    seq = sample(model, torch.tensor([1, 1]))
    forced = model.pattern.forced >= 0
    assert (seq[:, forced] == 9).all() and (seq[:, ~forced] < 9).all()


def test_flextok_number_of_tokens():
    model = random_model(TokenLayout("sequence", (64000,), (("n",),)), [(16,)])
    (stream,) = sample_streams(model, torch.tensor([0, 2]), num_steps=5)
    assert stream.shape == (2, 5)
    full = sample(model, torch.tensor([0, 2]))
    assert torch.equal(full[:, :5, 0], stream)  # a prefix of the full sample for the same seed
    with pytest.raises(TokError, match="cannot stop after 17 steps"):
        sample(model, torch.tensor([0]), num_steps=17)


def test_scales_stop_only_at_scale_ends():
    model = random_model(TokenLayout("scales", (8, 8), (("h", "w"),) * 2), [(1, 1), (2, 2)])
    with pytest.raises(TokError, match="cannot stop after 3 steps"):
        sample(model, torch.tensor([0]), num_steps=3)


def test_greedy_and_filters():
    model = random_model(TokenLayout("sequence", (50,), (("n",),)), [(6,)])
    a = sample(model, torch.tensor([0, 0]), options=SamplingOptions(temperature=0), seed=1)
    b = sample(model, torch.tensor([0, 0]), options=SamplingOptions(temperature=0), seed=2)
    assert torch.equal(a, b) and torch.equal(a[0], a[1])
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [[False, False, True, True]]
    # softmax = .64 .24 .09 .03: top-p 0.7 keeps the first two, 0.5 only the first.
    assert torch.isinf(filter_logits(logits, 0, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.5)).tolist() == [[False, True, True, True]]
    # Top-1 sampling equals greedy decoding.
    c = sample(model, torch.tensor([0, 0]), options=SamplingOptions(top_k=1), seed=3)
    assert torch.equal(a, c)


def test_cfg_formula_extremes():
    model = random_model(TokenLayout("sequence", (50,), (("n",),)), [(6,)])
    labels = torch.tensor([1, 2])
    greedy = {"temperature": 0.0}
    # cfg 0 gives the null class's logits alone; cfg 1 the conditional ones alone.
    null = sample(model, torch.tensor([3, 3]), options=SamplingOptions(**greedy))
    assert torch.equal(sample(model, labels, options=SamplingOptions(cfg=0.0, **greedy)), null)
    assert torch.equal(sample(model, labels, options=SamplingOptions(cfg=1.0, **greedy)), sample(model, labels, options=SamplingOptions(**greedy)))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"top_p": 0.0}, "top-p must be in"),
        ({"top_p": 1.5}, "top-p must be in"),
        ({"temperature": -0.5}, "temperature must be >= 0"),
        ({"top_k": -1}, "top-k must be >= 0"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(TokError, match=message):
        SamplingOptions(**kwargs)


def test_bad_labels_and_unconditional_cfg():
    model = random_model(TokenLayout("sequence", (50,), (("n",),)), [(4,)])
    with pytest.raises(TokError, match="class label out of range"):
        sample(model, torch.tensor([5]))
    uncond = random_model(TokenLayout("sequence", (50,), (("n",),)), [(4,)], num_classes=0)
    assert sample(uncond, torch.zeros(2, dtype=torch.long)).shape == (2, 4, 1)
    with pytest.raises(TokError, match="classifier-free guidance needs"):
        sample(uncond, torch.zeros(1, dtype=torch.long), options=SamplingOptions(cfg=2.0))


def test_linear_cfg_schedule_over_scales():
    layout = TokenLayout("scales", (50, 50, 50), (("h", "w"),) * 3)
    model = random_model(layout, [(1, 1), (2, 2), (3, 3)])
    labels = torch.tensor([0, 1])
    greedy = {"temperature": 0.0}
    linear = sample(model, labels, options=SamplingOptions(cfg=4.0, cfg_schedule="linear", **greedy))
    plain = sample(model, labels, options=SamplingOptions(**greedy))
    # Scale 0 is unguided (weight 1); the last scale is guided with weight 1 + 4 = 5.
    assert torch.equal(linear[:, :1], plain[:, :1])
    assert not torch.equal(linear, plain)
    assert torch.equal(linear, sample(model, labels, options=SamplingOptions(cfg=4.0, cfg_schedule="linear", **greedy), use_cache=False))
    with pytest.raises(TokError, match="unknown guidance schedule"):
        SamplingOptions(cfg_schedule="cosine")
