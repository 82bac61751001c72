"""Stage 1: text -> token ids and mask, padded to one of a few lengths, with a small per-text LRU cache.

Apps often score the same prompt ("a red star ...") against many images, so encodings are cached
per text. The tokenizer comes from the bundle's ``tokenizer.json``; truncation is forced to the
manifest's ``max_text_length``, and a batch is padded to the smallest of the manifest's ``text_lengths``
that holds its longest text (8/16/32/64 for base): a 6-token query runs the graph at 8 tokens, not 64.
Padding never changes a result (the graph masks it); a schema-1 bundle has one length, its fixed one.

Texts are bounded: one above ``MAX_TEXT_BYTES`` of UTF-8 is refused before it is tokenized or cached (the
model reads at most ``max_text_length`` tokens, 64 for base, a few hundred bytes; a megabyte of text would
only cost tokenizer time and cache memory), and the cache is bounded in entries and in bytes.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..text.tokenizer import PAD_TOKEN, EncodedText
from .errors import TextError

# The same typed batch training uses (edge_clipguard.text.tokenizer is torch-free).
TokenBatch = EncodedText


MAX_TEXT_BYTES = 16 * 1024  # longest text accepted, in bytes of UTF-8
TEXT_CACHE_BYTES = 4 * 1024 * 1024  # memory the per-text cache may hold (texts and their token ids)


def coerce_text(text: object, index: int = 0) -> str:
    """A non-empty ``str`` of at most MAX_TEXT_BYTES of UTF-8 from ``text``; bytes must be UTF-8. Raises
    TextError naming the problem."""
    where = f"text #{index}"
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        _check_size(len(raw), where)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TextError(f"{where}: bytes are not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                            "pass a str or UTF-8 bytes") from None
    if not isinstance(text, str):
        raise TextError(f"{where}: expected a str, got {type(text).__name__}")
    if len(text) * 4 > MAX_TEXT_BYTES:  # a str of few characters cannot be over the limit: skip the encode
        _check_size(len(text.encode("utf-8", "surrogatepass")), where)
    if not text.strip():
        raise TextError(f"{where}: is empty; the model scores a text, give it at least one word")
    return text


def _check_size(size: int, where: str) -> None:
    if size > MAX_TEXT_BYTES:
        raise TextError(f"{where}: {size:,} bytes of UTF-8 is above the {MAX_TEXT_BYTES:,}-byte limit; the model "
                        "reads only its first tokens, so send the part that matters")


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    entries: int
    bytes: int


class BoundedLru:
    """A thread-safe LRU memo of ``compute(key)`` holding at most ``max_entries`` values and ``max_bytes``
    (as ``size(key, value)`` counts them); the least recently used go first. ``get``/``put`` serve callers that
    compute many values at once (the text-feature cache); a ``compute`` of None makes it only that."""

    def __init__(self, compute: Callable | None, size: Callable, max_entries: int, max_bytes: int):
        self._compute, self._size = compute, size
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = self._hits = self._misses = 0
        self._lock = threading.Lock()

    def get(self, key):
        """The value kept for ``key`` (now the most recently used), or None; counted as a hit or a miss."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self._hits += 1
                return self._items[key][0]
            self._misses += 1
            return None

    def put(self, key, value) -> None:
        """Keep ``value`` unless it alone is above the byte bound; evict the least recently used past a bound."""
        size = self._size(key, value)
        with self._lock:
            if key not in self._items and size <= self.max_bytes:
                self._items[key] = (value, size)
                self._bytes += size
                while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                    _, (_, old) = self._items.popitem(last=False)
                    self._bytes -= old

    def __call__(self, key):
        value = self.get(key)
        if value is None:
            value = self._compute(key)  # outside the lock: other threads' hits do not wait for a tokenizer call
            self.put(key, value)
        return value

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._items), self._bytes)


def configure_tokenizer(tokenizer, max_length: int) -> tuple[object, int]:
    """(the same tokenizer truncating at ``max_length`` and no longer padding, the padding token's id): the
    stage pads each batch itself, to the length it needs."""
    truncation = tokenizer.truncation
    if truncation is None or truncation.get("max_length") != max_length:
        tokenizer.enable_truncation(max_length=max_length)
    padding = tokenizer.padding
    pad_token = padding["pad_token"] if padding else PAD_TOKEN
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise TextError(f"tokenizer has no padding token {pad_token!r}")
    tokenizer.no_padding()
    return tokenizer, pad_id


def padded_length(longest: int, lengths: tuple[int, ...]) -> int:
    """The smallest of ``lengths`` (ascending) that holds ``longest`` tokens."""
    for length in lengths:
        if length >= longest:
            return length
    return lengths[-1]  # truncation keeps every text within the last (max_text_length)


def pad_batch(rows: list[tuple[tuple[int, ...], bool]], lengths: tuple[int, ...], pad_id: int) -> TokenBatch:
    """(ids, truncated) rows -> one TokenBatch padded to ``padded_length`` of its longest row."""
    width = padded_length(max(len(ids) for ids, _ in rows), lengths)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, (row, _) in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return TokenBatch(ids, mask, tuple(truncated for _, truncated in rows))


def stack_tokens(parts: list[TokenBatch], pad_id: int = 0) -> TokenBatch:
    """Token batches (each already at one of the lengths) -> one batch at the widest of them; padding
    columns get ``pad_id`` and mask 0, so every row means what it meant alone."""
    width = max(p.input_ids.shape[1] for p in parts)

    def widen(array: np.ndarray, fill: int) -> np.ndarray:
        extra = width - array.shape[1]
        return array if not extra else np.pad(array, ((0, 0), (0, extra)), constant_values=fill)

    return TokenBatch(np.concatenate([widen(p.input_ids, pad_id) for p in parts]),
                      np.concatenate([widen(p.attention_mask, 0) for p in parts]),
                      tuple(t for p in parts for t in p.truncated))


class TextStage:
    """Encode texts into a TokenBatch. Thread-safe (the cache locks its own bookkeeping)."""

    def __init__(self, tokenizer, max_length: int, cache_size: int = 256, cache_bytes: int = TEXT_CACHE_BYTES,
                 lengths: tuple[int, ...] = ()):
        self.tokenizer, self.pad_id = configure_tokenizer(tokenizer, max_length)
        self.max_length = max_length
        self.lengths = tuple(lengths) or (max_length,)
        encode = self._encode_one
        self._cache = BoundedLru(encode, _entry_bytes, cache_size, cache_bytes) if cache_size > 0 else None
        self._encode = self._cache or encode

    def _encode_one(self, text: str) -> tuple[tuple[int, ...], bool]:
        enc = self.tokenizer.encode(text)
        return tuple(enc.ids), bool(enc.overflowing)

    def __call__(self, texts: list[object]) -> TokenBatch:
        if not texts:
            raise TextError("no texts given")
        return pad_batch([self._encode(coerce_text(t, i)) for i, t in enumerate(texts)], self.lengths, self.pad_id)

    def cache_info(self) -> CacheInfo | None:
        return self._cache.info() if self._cache is not None else None


def _entry_bytes(text: str, value: tuple) -> int:
    """About what one cache entry holds: the text object, a tuple of token ints (8 bytes a slot; the ints
    themselves are mostly shared) and the entry's bookkeeping."""
    return sys.getsizeof(text) + sys.getsizeof(value[0]) + 200
