"""UTMOS22 strong learner: a non-intrusive naturalness MOS (1-5) for speech at 16 kHz."""

from .model import UTMOS22Strong, convert_lightning_state_dict, load_utmos
from .score import UTMOS, utmos
from .wav2vec2 import Wav2Vec2, Wav2Vec2Config

__all__ = ["UTMOS", "UTMOS22Strong", "Wav2Vec2", "Wav2Vec2Config", "convert_lightning_state_dict", "load_utmos", "utmos"]
