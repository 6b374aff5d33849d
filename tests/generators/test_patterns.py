import pytest
import torch

from tok.core import TokenLayout, TokError
from tok.generators.patterns import build_pattern


def layouts():
    yield TokenLayout("sequence", (64000,), (("n",),)), [(12,)], "delay"
    yield TokenLayout("grid", (100,), (("h", "w"),)), [(3, 4)], "delay"
    yield TokenLayout("grid", (100,), (("t", "h", "w"),)), [(2, 3, 4)], "delay"
    yield TokenLayout("scales", (50, 50, 50), (("h", "w"),) * 3), [(1, 1), (2, 2), (4, 4)], "delay"
    yield TokenLayout("scales", (30, 40), (("t",),) * 2), [(3,), (5,)], "delay"
    yield TokenLayout("codebooks", (17,), (("q", "t"),)), [(4, 6)], "delay"
    yield TokenLayout("codebooks", (17,), (("q", "t"),)), [(4, 6)], "flat"
    yield TokenLayout("codebooks", (17,), (("q", "t"),)), [(1, 6)], "flat"


@pytest.mark.parametrize("layout,shapes,codebook_pattern", list(layouts()))
def test_round_trip_and_step_tables(layout, shapes, codebook_pattern):
    pattern = build_pattern(layout, shapes, codebook_pattern)
    streams = [torch.randint(0, v, (3, *s)) for v, s in zip(layout.vocab_sizes, shapes)]
    seq = pattern.to_sequence(streams)
    assert seq.shape == (3, pattern.length, pattern.width)
    back = pattern.from_sequence(seq)
    assert all(torch.equal(a, b) for a, b in zip(streams, back))
    L = pattern.length
    assert pattern.positions.shape == (L, pattern.num_axes)
    assert pattern.levels.shape == pattern.groups.shape == pattern.sources.shape == (L,)
    assert pattern.forced.shape == pattern.vocab_limits.shape == (L, pattern.width)
    # Every input comes from an earlier group: the model never sees what it predicts.
    has_source = pattern.sources >= 0
    assert (pattern.groups[pattern.sources[has_source]] < pattern.groups[has_source]).all()
    # Sequence ids at non-forced slots stay inside the per-slot limits.
    free = pattern.forced < 0
    assert (seq[:, free] < pattern.vocab_limits[free]).all()


def test_grid_positions_are_raster_coordinates():
    pattern = build_pattern(TokenLayout("grid", (10,), (("h", "w"),)), [(2, 3)])
    assert pattern.positions.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert pattern.is_causal
    assert torch.equal(pattern.attention_mask(), torch.ones(6, 6).tril().bool())
    grid = torch.arange(6).reshape(1, 2, 3)
    assert pattern.to_sequence([grid])[0, :, 0].tolist() == list(range(6))


def test_scales_block_causal_mask_and_parents():
    layout = TokenLayout("scales", (8, 8, 8), (("h", "w"),) * 3)
    pattern = build_pattern(layout, [(1, 1), (2, 2), (4, 4)])
    assert pattern.length == 21 and not pattern.is_causal
    assert pattern.group_slices() == [(0, 1), (1, 5), (5, 21)]
    mask = pattern.attention_mask()
    assert mask[1:5, :5].all() and not mask[1:5, 5:].any() and not mask[0, 1:].any()
    assert pattern.sources[:5].tolist() == [-1, 0, 0, 0, 0]
    # The 4x4 cell (3, 0) lies under the 2x2 cell (1, 0), step 1 + 2 = 3.
    assert pattern.sources[5 + 3 * 4 + 0].item() == 3
    # Cell centres on the finest grid: the 1x1 scale sits in the middle.
    assert pattern.positions[0].tolist() == [1.5, 1.5]
    assert pattern.levels.tolist() == [0] + [1] * 4 + [2] * 16


def test_delay_pattern_matches_musicgen_layout():
    layout = TokenLayout("codebooks", (5,), (("q", "t"),))
    pattern = build_pattern(layout, [(3, 4)])
    assert pattern.length == 6 and pattern.width == 3 and pattern.vocab_size == 6
    codes = torch.tensor([[[1, 2, 3, 4], [0, 1, 2, 3], [4, 4, 4, 4]]])
    seq = pattern.to_sequence([codes])[0]
    special = 5
    assert seq[:, 0].tolist() == [1, 2, 3, 4, special, special]
    assert seq[:, 1].tolist() == [special, 0, 1, 2, 3, special]
    assert seq[:, 2].tolist() == [special, special, 4, 4, 4, 4]
    assert ((pattern.forced >= 0) == (seq == special)).all()
    assert (pattern.targets(seq[None])[0][seq == special] == -100).all()


def test_sequence_prefix_decodes_to_shorter_stream():
    pattern = build_pattern(TokenLayout("sequence", (64000,), (("n",),)), [(16,)])
    seq = torch.randint(0, 64000, (2, 5, 1))
    (stream,) = pattern.from_sequence(seq)
    assert stream.shape == (2, 5)


def test_inputs_shift_by_one_and_start_token():
    pattern = build_pattern(TokenLayout("sequence", (100,), (("n",),)), [(4,)])
    seq = torch.tensor([[[7], [8], [9], [10]]])
    assert pattern.inputs(seq)[0, :, 0].tolist() == [0, 7, 8, 9]
    assert pattern.inputs(seq, 2, 4)[0, :, 0].tolist() == [8, 9]


def test_bad_shapes_and_layouts():
    with pytest.raises(TokError, match="item shape"):
        build_pattern(TokenLayout("grid", (10,), (("h", "w"),)), [(2, 3)]).to_sequence([torch.zeros(1, 3, 2, dtype=torch.long)])
    with pytest.raises(TokError, match="codebook pattern"):
        build_pattern(TokenLayout("codebooks", (10,), (("q", "t"),)), [(2, 3)], "zigzag")
    pattern = build_pattern(TokenLayout("sequence", (10,), (("n",),)), [(8,)])
    assert pattern.to_dict() == type(pattern).from_dict(pattern.to_dict()).to_dict()
