"""Test-sized models of every family with seeded random weights (no checkpoint needed)."""

import torch

from tok import api
from tok.core import zoo
from tok.core.tokenizer import Tokenizer
from tok.tokenizers.tokenflow.config import preset as tokenflow_preset
from tok.tokenizers.tokenflow.model import build as build_tokenflow


def random_model(name: str) -> Tokenizer:
    """A zoo card's architecture (e.g. "omnitokenizer-tiny"), or "tokenflow-tiny", in eval mode."""
    torch.manual_seed(0)
    if name == "tokenflow-tiny":  # test-sized preset without a zoo card
        return build_tokenflow(tokenflow_preset("tiny")).eval()
    api._register_families()
    card = zoo.get_card(name)
    return card.builder(card).eval()
