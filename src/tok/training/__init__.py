"""Tokenizer training: one Accelerate trainer, the papers' losses, data pipelines, recipes."""
