"""Visual and 3D tokenizer families, one folder each; importing a family registers its models."""
