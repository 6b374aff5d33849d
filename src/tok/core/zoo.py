"""The model zoo: one `ModelCard` per named model, registered by each family's `__init__`.

A card says how to build the model (`builder`, a callable taking the card) and where its
weights may come from (Hugging Face repo and files, a bundled file). Family aliases (`flextok`)
resolve to the best variant whose weights are available here, in the order they list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import TokError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    """Everything the toolkit knows about one named model.

    Args:
        name: zoo name, e.g. "flextok-small" or "flextok-d18-d28-in1k".
        family: family folder name, e.g. "flextok".
        modality: image | video | audio | shape.
        config: the preset config dataclass.
        builder: callable(card) -> Tokenizer with random weights.
        load_weights: callable(tokenizer, WeightSource) that fills the weights in, strictly.
        hf_repo: Hugging Face repo id of the official weights ("" when none).
        hf_files: files to fetch from `hf_repo` (the first is the main weights file).
        extra_repos: other repos the weights need, e.g. {"vae": "EPFL-VILAB/flextok_vae_c16"}.
        bundled: file name under tok/zoo_weights ("" when none).
        tokens: human summary of the token layout, e.g. "1-256 x 64000 (1D sequence)".
        paper, license: provenance for `tok models`.
    """

    name: str
    family: str
    modality: str
    config: Any
    builder: Callable[["ModelCard"], Any]
    load_weights: Callable[[Any, Any], None]
    hf_repo: str = ""
    hf_files: tuple[str, ...] = ()
    extra_repos: dict[str, str] = field(default_factory=dict)
    bundled: str = ""
    tokens: str = ""
    paper: str = ""
    license: str = ""
    description: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "modality": self.modality,
            "tokens": self.tokens,
            "weights": {"hf_repo": self.hf_repo, "bundled": self.bundled},
            "paper": self.paper,
            "license": self.license,
            "description": self.description,
        }


_CARDS: dict[str, ModelCard] = {}
_ALIASES: dict[str, tuple[str, ...]] = {}


def register(card: ModelCard) -> ModelCard:
    if card.name in _CARDS or card.name in _ALIASES:
        raise ValueError(f"model name {card.name!r} registered twice")
    _CARDS[card.name] = card
    return card


def register_alias(alias: str, candidates: tuple[str, ...]) -> None:
    """`alias` resolves to the first of `candidates` whose weights are available."""
    if alias in _CARDS or alias in _ALIASES:
        raise ValueError(f"model name {alias!r} registered twice")
    _ALIASES[alias] = tuple(candidates)


def cards() -> list[ModelCard]:
    return list(_CARDS.values())


def aliases() -> dict[str, tuple[str, ...]]:
    return dict(_ALIASES)


def get_card(name: str) -> ModelCard:
    """The card of a concrete model name (aliases are resolved by `resolve_name`)."""
    if name in _ALIASES:
        raise TokError(f"{name!r} is a family alias; resolve it first")
    try:
        return _CARDS[name]
    except KeyError:
        known = ", ".join(sorted([*_CARDS, *_ALIASES]))
        raise TokError(f"unknown model {name!r}; known models: {known}") from None


def resolve_name(name: str, available: Callable[[ModelCard], bool]) -> str:
    """Resolve a family alias to the first candidate for which `available(card)` holds."""
    if name in _CARDS:
        return name
    if name not in _ALIASES:
        get_card(name)  # raises the unknown-model error
    for candidate in _ALIASES[name]:
        if available(_CARDS[candidate]):
            logger.info("model %r resolved to %r", name, candidate)
            return candidate
    raise TokError(f"no weights available for any model of {name!r} ({', '.join(_ALIASES[name])})")
