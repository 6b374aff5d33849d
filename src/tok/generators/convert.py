"""Official LlamaGen c2i checkpoints (FoundationVision/LlamaGen `c2i_{B,L,XL}_{256,384}.pt`) -> `GPT`.

The checkpoint is read with `torch.load(weights_only=True)`; its state dict sits under "model"
(or "module" / "state_dict"), keys differ from ours only in the feed-forward names, and the model
is built with LlamaGen's RoPE convention so its logits equal the official model's.
"""

from __future__ import annotations

import os

import torch

from ..core import TokenLayout
from ..core.weights import load_strict, read_state_dict
from .gpt import GPT, llamagen_key, preset
from .patterns import build_pattern

LLAMAGEN_VOCAB = 16384  # vq_ds16_c2i
LLAMAGEN_DOWNSAMPLE = 16


def convert_llamagen_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """A loaded LlamaGen checkpoint -> a state dict with our key names (pure function)."""
    for wrapper in ("model", "module", "state_dict"):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    # Inference-time buffers (KV caches) are not weights.
    return {llamagen_key(k): v for k, v in checkpoint.items() if ".kv_cache." not in k and k != "freqs_cis"}


def load_llamagen(path: str | os.PathLike, preset_name: str = "llamagen-b", image_size: int = 256, num_classes: int = 1000) -> GPT:
    """Build `preset_name` for `image_size` images (16x16 or 24x24 tokens) and load an official checkpoint strictly."""
    checkpoint = read_state_dict(path)  # torch.load(weights_only=True), TokError on a bad file
    grid = image_size // LLAMAGEN_DOWNSAMPLE
    pattern = build_pattern(TokenLayout("grid", (LLAMAGEN_VOCAB,), (("h", "w"),)), [(grid, grid)])
    model = GPT(preset(preset_name, num_classes=num_classes, class_dropout=0.1, llamagen_rope=True, dropout=0.0), pattern)
    load_strict(model, convert_llamagen_state_dict(checkpoint), path)
    return model.eval()
