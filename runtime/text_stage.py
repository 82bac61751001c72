"""Stage 1: text -> fixed-length token ids and mask, with a small per-text LRU cache.

Apps often score the same prompt ("a red star ...") against many images, so encodings are cached
per text. The tokenizer comes from the bundle's ``tokenizer.json``; padding and truncation are forced
to the manifest's ``max_text_length`` so the feed always matches the graph's fixed shape.
"""

from __future__ import annotations

import functools

import numpy as np

from ..text.tokenizer import PAD_TOKEN, EncodedText
from .errors import TextError

# The same typed batch training uses (edge_clipguard.text.tokenizer is torch-free).
TokenBatch = EncodedText


def coerce_text(text: object, index: int = 0) -> str:
    """A non-empty ``str`` from ``text``; bytes must be UTF-8. Raises TextError naming the problem."""
    where = f"text #{index}"
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextError(f"{where}: bytes are not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            "pass a str or UTF-8 bytes") from None
    if not isinstance(text, str):
        raise TextError(f"{where}: expected a str, got {type(text).__name__}")
    if not text.strip():
        raise TextError(f"{where}: is empty; the model scores a text, give it at least one word")
    return text


def configure_tokenizer(tokenizer, max_length: int):
    """Force truncation and padding to exactly ``max_length`` tokens (returns the same tokenizer)."""
    truncation = tokenizer.truncation
    if truncation is None or truncation.get("max_length") != max_length:
        tokenizer.enable_truncation(max_length=max_length)
    padding = tokenizer.padding
    if padding is None or padding.get("length") != max_length:
        pad_token = padding["pad_token"] if padding else PAD_TOKEN
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise TextError(f"tokenizer has no padding token {pad_token!r}")
        tokenizer.enable_padding(length=max_length, pad_id=pad_id, pad_token=pad_token)
    return tokenizer


class TextStage:
    """Encode texts into a TokenBatch. Thread-safe (functools.lru_cache locks its own bookkeeping)."""

    def __init__(self, tokenizer, max_length: int, cache_size: int = 256):
        self.tokenizer = configure_tokenizer(tokenizer, max_length)
        self.max_length = max_length
        encode = self._encode_one
        self._encode = functools.lru_cache(maxsize=cache_size)(encode) if cache_size > 0 else encode

    def _encode_one(self, text: str) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
        enc = self.tokenizer.encode(text)
        return tuple(enc.ids), tuple(enc.attention_mask), bool(enc.overflowing)

    def __call__(self, texts: list[object]) -> TokenBatch:
        if not texts:
            raise TextError("no texts given")
        rows = [self._encode(coerce_text(t, i)) for i, t in enumerate(texts)]
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        mask = np.asarray([r[1] for r in rows], dtype=np.int64)
        return TokenBatch(ids, mask, tuple(r[2] for r in rows))

    def cache_info(self):
        return self._encode.cache_info() if hasattr(self._encode, "cache_info") else None
