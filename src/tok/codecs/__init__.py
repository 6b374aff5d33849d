"""Audio codecs: WavTokenizer and XY-Tokenizer behind the common Tokenizer interface."""
