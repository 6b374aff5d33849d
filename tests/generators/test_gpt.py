import pytest
import torch
from test_patterns import layouts

from tok.core import TokenLayout, TokError
from tok.generators.gpt import (
    GPT,
    PRESETS,
    count_parameters,
    llamagen_ffn_hidden,
    llamagen_key,
    preset,
)
from tok.generators.patterns import build_pattern
from tok.nn.rope import RotaryEmbedding, apply_rotary


def llamagen_pattern():
    return build_pattern(TokenLayout("grid", (16384,), (("h", "w"),)), [(16, 16)])


@pytest.mark.parametrize(
    "name,expected",
    # LlamaGen c2i: vocab 16384, 1000 classes + null row; comments in gpt.py say 111M, 343M, 775M.
    [("llamagen-b", 110_888_448), ("llamagen-l", 342_910_976), ("llamagen-xl", 774_699_520)],
)
def test_llamagen_parameter_counts(name, expected):
    pattern = llamagen_pattern()
    with torch.device("meta"):
        model = GPT(preset(name, num_classes=1000), pattern)
    assert count_parameters(model) == expected
    assert PRESETS[name].hidden == {"llamagen-b": 2048, "llamagen-l": 2816, "llamagen-xl": 3584}[name]


def test_llamagen_key_names():
    pattern = llamagen_pattern()
    with torch.device("meta"):
        model = GPT(preset("tiny", num_classes=10), pattern)
    keys = set(model.state_dict())
    official = [
        "tok_embeddings.weight", "cls_embedding.embedding_table.weight", "layers.0.attention.wqkv.weight",
        "layers.0.attention.wo.weight", "layers.0.feed_forward.w1.weight", "layers.0.feed_forward.w2.weight",
        "layers.0.feed_forward.w3.weight", "layers.0.attention_norm.weight", "layers.0.ffn_norm.weight",
        "norm.weight", "output.weight",
    ]
    assert {llamagen_key(k) for k in official} <= keys
    assert llamagen_ffn_hidden(1536) == 4096


def test_rope_is_relative():
    rope = RotaryEmbedding(16, num_axes=2)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(pq, pk):
        cq, sq = rope(torch.tensor([pq], dtype=torch.float32))
        ck, sk = rope(torch.tensor([pk], dtype=torch.float32))
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum()

    assert torch.allclose(score([3, 5], [1, 2]), score([7, 9], [5, 6]), atol=1e-5)
    assert not torch.allclose(score([3, 5], [1, 2]), score([3, 5], [2, 1]), atol=1e-3)
    # Rotation keeps the norm.
    c, s = rope(torch.tensor([[4.0, 2.0]]))
    assert torch.allclose(apply_rotary(q, c, s).norm(), q.norm())


@pytest.mark.parametrize("layout,shapes,codebook_pattern", list(layouts()))
def test_every_layout_trains_and_is_causal(layout, shapes, codebook_pattern):
    pattern = build_pattern(layout, shapes, codebook_pattern)
    model = GPT(preset("tiny", num_classes=3), pattern)
    torch.nn.init.normal_(model.output.weight, std=0.02)
    streams = [torch.randint(0, v, (2, *s)) for v, s in zip(layout.vocab_sizes, shapes)]
    seq = pattern.to_sequence(streams)
    labels = torch.tensor([0, 2])
    loss = model.loss(seq, labels)
    loss.backward()
    assert torch.isfinite(loss) and model.layers[0].attention.wqkv.weight.grad.abs().sum() > 0
    model.eval()
    # Changing the ids of the last group must not change the logits of any earlier group.
    start, end = pattern.group_slices()[-1]
    changed = seq.clone()
    changed[:, start:end] = (changed[:, start:end] + 1) % pattern.vocab_limits[start:end]
    with torch.no_grad():
        a = model(pattern.inputs(seq), labels)
        b = model(pattern.inputs(changed), labels)
    assert torch.allclose(a[:, :end], b[:, :end], atol=1e-6)


def test_class_dropout_uses_null_class_only_in_training():
    model = GPT(preset("tiny", num_classes=4, class_dropout=0.5), build_pattern(TokenLayout("sequence", (10,), (("n",),)), [(3,)]))
    assert model.null_class == 4 and model.has_null_class
    labels = torch.zeros(4000, dtype=torch.long)
    model.train()
    dropped = (model.cls_embedding(labels) == model.cls_embedding.embedding_table.weight[4]).all(-1).float().mean()
    assert 0.45 < dropped < 0.55
    model.eval()
    assert (model.cls_embedding(labels) == model.cls_embedding.embedding_table.weight[0]).all()
    with pytest.raises(TokError, match="class label out of range"):
        model.check_labels(torch.tensor([5]))
