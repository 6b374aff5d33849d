"""Audio codecs: one family per folder (wavtokenizer, xy_tokenizer)."""
