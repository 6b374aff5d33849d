"""Fixtures: random-weight OmniTokenizer models and official-layout checkpoints."""

from pathlib import Path

import pytest
from omni_checkpoints import random_model, write_official_checkpoint

from tok.tokenizers.omnitokenizer import OmniTokenizer, preset


@pytest.fixture(scope="session")
def tiny_model() -> OmniTokenizer:
    return random_model(preset("tiny"))


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, tiny_model) -> Path:
    return write_official_checkpoint(tiny_model, tmp_path_factory.mktemp("omni") / "tiny.ckpt")
