"""Batched, pipelined prediction over a stream of (text, image) pairs.

Why: on a camera or a folder, decoding and letterboxing the next frames can run while the backend
infers the current batch (Pillow and the backends release the GIL), so throughput approaches the
slower of the two instead of their sum. ``workers`` threads prepare items (tokenize, decode,
letterbox); at most ``prefetch`` batches wait ahead of the one being inferred, so memory stays
bounded however long the stream is. Results come back in input order. An item that cannot be
prepared (corrupt image, empty text, ...) becomes a ``StreamItem`` with ``error`` set and the stream
goes on; anything that is not a ``ClipGuardError`` is a bug and propagates.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import ClipGuardError
from .image_stage import ImageBatch
from .results import Result
from .text_stage import TokenBatch, stack_tokens


@dataclass(frozen=True)
class StreamItem:
    """One input of the stream: ``index`` is its position; exactly one of ``result`` and ``error`` is set."""

    index: int
    result: Result | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class PreparedRow:
    """One (text, image) pair tokenized, decoded and letterboxed: a one-row batch of each."""

    tokens: TokenBatch  # one row
    pixels: ImageBatch  # one row


def stack_rows(parts: list[PreparedRow]) -> tuple[TokenBatch, ImageBatch]:
    """Prepared rows -> one TokenBatch and one ImageBatch, in order (the serve module batches with it too)."""
    tokens = stack_tokens([p.tokens for p in parts])
    pixels = ImageBatch(np.concatenate([p.pixels.pixel_values for p in parts]),
                        tuple(b for p in parts for b in p.pixels.letterboxes))
    return tokens, pixels


def prepare_row(predictor, index: int, text: object, image: object) -> PreparedRow | str:
    """Tokenize and decode one pair; a ClipGuardError (corrupt image, empty text, ...) becomes its message."""
    try:
        return PreparedRow(predictor.tokenize_one(text, index), predictor.preprocess_one(image, index))
    except ClipGuardError as exc:
        return str(exc)


def _finish(predictor, indices: list[int], futures: list[Future]) -> list[StreamItem]:
    """Wait for one batch's items, infer the good ones together, and return all items in order."""
    prepared = [f.result() for f in futures]
    good = [(i, p) for i, p in zip(indices, prepared) if isinstance(p, PreparedRow)]
    results: dict[int, Result] = {}
    if good:
        tokens, pixels = stack_rows([p for _, p in good])
        decoded = predictor.decode(predictor.infer(tokens, pixels), tokens, pixels)
        results = {i: r for (i, _), r in zip(good, decoded)}
    return [StreamItem(i, result=results[i]) if i in results else StreamItem(i, error=p)
            for i, p in zip(indices, prepared)]


def predict_stream(predictor, pairs: Iterable[tuple[object, object]], batch_size: int = 8, workers: int = 2,
                   prefetch: int = 2) -> Iterator[StreamItem]:
    """Yield one StreamItem per (text, image) pair, in order; see the module docstring."""
    if batch_size < 1 or workers < 1 or prefetch < 1:
        raise ClipGuardError(f"predict_stream: batch_size, workers and prefetch must be >= 1 "
                             f"(got {batch_size}, {workers}, {prefetch})")
    numbered = enumerate(pairs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipguard-prepare") as pool:
        pending: deque[tuple[list[int], list[Future]]] = deque()

        def submit_next() -> bool:
            chunk = list(itertools.islice(numbered, batch_size))
            if chunk:
                pending.append(([i for i, _ in chunk],
                                [pool.submit(prepare_row, predictor, i, text, image) for i, (text, image) in chunk]))
            return bool(chunk)

        while len(pending) <= prefetch and submit_next():
            pass
        while pending:
            indices, futures = pending.popleft()
            submit_next()  # keep the pipeline full while this batch is inferred
            yield from _finish(predictor, indices, futures)
