"""Evaluation runs: `evaluate(model, data, metrics=[...])` and `tok eval` (see `run.py`)."""

from .run import DEFAULT_METRICS, IMAGE_METRICS, compare_table, evaluate, load_summary

__all__ = ["DEFAULT_METRICS", "IMAGE_METRICS", "compare_table", "evaluate", "load_summary"]
