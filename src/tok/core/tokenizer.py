"""The Tokenizer contract: encoder -> quantizer -> decoder behind encode / decode.

Metrics, evaluation runs, the AR generator and the CLI talk only to this class:

    x = tok.preprocess(media)          # media -> model tensor (B, ...)
    tokens = tok.encode(x)             # Tokens (ids + layout), eval mode, no grad
    y = tok.decode(tokens)             # model tensor, same space as x
    media = tok.postprocess(y)         # back to media

`forward(x)` is the training path and returns a `TokenizerOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .errors import TokError
from .tokens import TokenLayout, Tokens

MODALITIES = ("image", "video", "audio", "shape")


@dataclass
class TokenizerOutput:
    """recon: reconstruction or training prediction; tokens: ids (None when not quantized); losses: name -> scalar."""

    recon: Tensor
    tokens: Tokens | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)


class Tokenizer(nn.Module):
    """Base class of every tokenizer and codec.

    Subclasses set `modality`, build `encoder`, `quantizer`, `decoder`, and implement
    `layout`, `preprocess`, `postprocess`, `encode`, `decode` and `forward`.
    `name` and `weights_digest` are filled in by the zoo when a model is loaded, and written
    into every `.tok` file so decoding can check that the tokens belong to this model.
    """

    modality: ClassVar[str]

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        self.name = type(self).__name__.lower()
        self.weights_digest = ""

    @property
    def layout(self) -> TokenLayout:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def preprocess(self, media: Any) -> Tensor:
        raise NotImplementedError

    def postprocess(self, x: Tensor) -> Any:
        raise NotImplementedError

    def encode(self, x: Tensor, **opts: Any) -> Tokens:
        raise NotImplementedError

    def decode(self, tokens: Tokens, **opts: Any) -> Tensor:
        raise NotImplementedError

    def check_num_tokens(self, num_tokens: int | None) -> int | None:
        """Validate a requested token count; families with a flexible length override this."""
        if num_tokens is not None:
            raise TokError(f"model {self.name!r} has a fixed token count; do not pass a number of tokens")
        return None

    def make_tokens(self, streams: list[Tensor], sources: list[dict[str, Any]] | None = None) -> Tokens:
        """Wrap ids from this model in `Tokens` carrying its name, digest and layout."""
        return Tokens(streams, self.layout, self.name, self.weights_digest, sources or [])

    def check_tokens(self, tokens: Tokens, origin: str = "tokens") -> None:
        """Refuse tokens made by another model or with an incompatible layout."""
        if tokens.model != self.name:
            raise TokError(f"{origin} were made by model {tokens.model!r}, not {self.name!r}: decode them with --model {tokens.model}")
        if not tokens.layout.compatible_with(self.layout):
            raise TokError(f"{origin}: layout {tokens.layout.kind} {tokens.layout.vocab_sizes} does not match model {self.name!r}")
        if tokens.weights_digest and self.weights_digest and tokens.weights_digest != self.weights_digest:
            # Same architecture, other weights: ids would decode to garbage without an error.
            raise TokError(
                f"{origin} were made with weights {tokens.weights_digest}, but {self.name!r} has weights {self.weights_digest}"
            )
        tokens.validate_ids(origin)
