"""tok: discrete tokenizers and codecs for images, video, audio and 3D behind one interface.

    import tok
    model = tok.load("flextok")                    # best FlexTok available offline
    tokens = model.encode(model.preprocess(image), num_tokens=32)
    image = model.postprocess(model.decode(tokens))
    tokens, images, files = tok.generate("runs/ar/ar.safetensors", 8, cfg=2.0)  # AR samples
"""

from .api import decode_file, encode_file, list_models, load
from .core import TokError, Tokenizer, TokenLayout, Tokens
from .eval import evaluate
from .generators.generate import generate

__version__ = "0.1.0"
__all__ = ["TokError", "Tokenizer", "TokenLayout", "Tokens", "decode_file", "encode_file", "evaluate", "generate", "list_models", "load"]
