"""Random-weight XY-Tokenizer checkpoints in the official key layout."""

from pathlib import Path

import pytest
import torch

from tok.codecs.xy_tokenizer import XYTokenizer, official_state_dict, preset


def random_tiny(seed: int = 1) -> XYTokenizer:
    """A `tiny` model with initialised random codebooks and non-trivial layer scales."""
    torch.manual_seed(seed)
    model = XYTokenizer(preset("tiny"))
    model.quantizer.set_random_codebooks(std=0.5)
    for block in model.vocos.backbone.convnext:
        block.gamma.data.fill_(0.5)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_xy_checkpoint(tmp_path_factory) -> Path:
    """An official-style `xy_tokenizer.ckpt` ({"generator": state_dict}) for `xy-tokenizer-tiny`."""
    path = tmp_path_factory.mktemp("xy_tiny") / "xy_tokenizer.ckpt"
    torch.save({"generator": official_state_dict(random_tiny())}, path)
    return path


@pytest.fixture
def tiny_xy() -> XYTokenizer:
    return random_tiny()
