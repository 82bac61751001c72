"""Text tokenization with the ``tokenizers`` library alone (no transformers, no torch)."""
