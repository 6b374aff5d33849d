"""Segment masks: exact structure of the block-causal (scale-causal) mask."""

import pytest
import torch

from tok.nn.masks import block_causal_mask, segment_ids
from tok.nn.patch import PatchEmbed, unpatchify


def test_segment_ids():
    assert segment_ids((1, 4, 2)).tolist() == [0, 1, 1, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="positive"):
        segment_ids((1, 0))


def test_block_causal_mask_structure():
    mask = block_causal_mask((1, 2, 3))
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert mask.dtype == torch.bool and torch.equal(mask, expected)


def test_patch_embed_and_unpatchify_round_trip():
    x = torch.randn(2, 3, 16, 24)
    embed = PatchEmbed(3, 8, 32)
    assert embed(x).shape == (2, 6, 32)
    # A patch vector in (row-in-patch, col-in-patch, channel) order maps back to its pixels.
    patches = x.reshape(2, 3, 2, 8, 3, 8).permute(0, 2, 4, 3, 5, 1).reshape(2, 6, 192)
    assert torch.equal(unpatchify(patches, 2, 3, 8), x)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        embed(torch.randn(1, 3, 12, 16))
