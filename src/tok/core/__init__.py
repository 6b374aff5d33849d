"""Contracts shared by every tokenizer; imports nothing else from tok."""

from .errors import TokError
from .quantize import MultiScaleOutput, MultiScaleResidualQuantizer, Quantizer, QuantizerOutput
from .tokenizer import Tokenizer, TokenizerOutput
from .tokens import TokenLayout, Tokens

__all__ = ["TokError", "Quantizer", "QuantizerOutput", "MultiScaleResidualQuantizer", "MultiScaleOutput", "Tokenizer", "TokenizerOutput", "TokenLayout", "Tokens"]
