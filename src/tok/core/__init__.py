"""Contracts shared by every tokenizer; imports nothing else from tok."""

from .errors import TokError
from .quantize import Quantizer, QuantizerOutput
from .tokenizer import Tokenizer, TokenizerOutput
from .tokens import TokenLayout, Tokens

__all__ = ["TokError", "Quantizer", "QuantizerOutput", "Tokenizer", "TokenizerOutput", "TokenLayout", "Tokens"]
