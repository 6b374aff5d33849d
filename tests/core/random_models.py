"""Test-sized models of every family with seeded random weights (no checkpoint needed), and
seeded inputs for them."""

import torch
import torch.nn.functional as F

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


def random_inputs(name: str, model: Tokenizer, batch: int = 1) -> torch.Tensor:
    """`batch` seeded model inputs for `random_model(name)`: images, 5-frame clips, 1-s or 0.5-s
    audio, or points on a sphere with their normals."""
    torch.manual_seed(1)
    if name.startswith(("flextok", "tokenflow", "hieratok")):
        s = model.config.image_size
        return torch.rand(batch, 3, s, s) * 2 - 1
    if name.startswith("omnitokenizer"):
        s = model.resolution
        return torch.rand(batch, 3, 5, s, s) - 0.5
    if name.startswith("vat"):
        xyz = F.normalize(torch.randn(batch, model.config.num_points, 3), dim=-1) * 0.5
        return torch.cat([xyz, xyz * 2], dim=-1)
    if name.startswith("wavtokenizer"):
        return torch.randn(batch, 12000) * 0.3
    return torch.randn(batch, 16000) * 0.3
