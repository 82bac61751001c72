"""Offline scoring at scale on Ray Data: a callable class around ``Predictor`` for ``Dataset.map_batches``.

Why Ray Data: people scoring millions of (text, image) pairs already have a cluster scheduler; Ray Data
streams the table through a pool of actors, each holding one loaded model, and writes Parquet. Nothing here
imports Ray: ``BundleScorer`` takes a batch (a dict of column -> numpy array, Ray's default batch format)
and returns a ``pyarrow.Table``, so it is testable alone and works with any Ray version that has
``map_batches(CallableClass, concurrency=N)``. Usage (the recipe is in docs/deploy/ray.md)::

    ds = ray.data.read_parquet("pairs.parquet")            # columns: text, image (a path or decoded pixels)
    out = ds.map_batches(BundleScorer, fn_constructor_kwargs={"bundle": "bundle/"}, concurrency=4,
                         batch_size=64)
    out.write_parquet("scores/")

An image that cannot be decoded, or an empty text, becomes a row with ``error`` set (and a NaN score): one
bad file never fails a job of millions. Every input column is passed through (ids, paths) but
decoded pixels and encoded bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .predictor import Predictor, PredictorConfig
from .stream import StreamItem


class BundleScorer:
    """One Predictor per Ray actor (built in ``__init__``, which Ray runs once per actor; the Predictor frees
    its backend when the actor goes); ``__call__`` scores a batch. ``image_column`` holds paths, encoded bytes
    or decoded HxWx3 uint8 arrays (``ray.data.read_images`` writes ``image``); ``threads`` defaults to 1
    because Ray runs one actor per CPU it reserves."""

    def __init__(self, bundle: str | Path, backend: str = "auto", precision: str | None = None, threads: int = 1,
                 text_column: str = "text", image_column: str = "image", workers: int = 1, **options: Any):
        config = PredictorConfig(backend=backend, precision=precision, threads=threads, **options)
        self.predictor = Predictor.from_config(bundle, config)
        self.text_column, self.image_column, self.workers = text_column, image_column, workers

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa  # Ray Data's own dependency; needed only where a table is built

        for column in (self.text_column, self.image_column):
            if column not in batch:
                raise KeyError(f"BundleScorer: the batch has no {column!r} column (columns: {sorted(batch)}); "
                               f"set text_column= / image_column=")
        texts, images = list(batch[self.text_column]), list(batch[self.image_column])
        items = self.predictor.predict_stream(zip(texts, images), batch_size=max(1, len(texts)),
                                              workers=self.workers)
        rows = [_result_row(item) for item in items]
        columns = {name: pa.array(_plain(values)) for name, values in batch.items()
                   if name != self.image_column or _holds_paths(values)}
        for name, kind in _result_types(pa):
            columns[name] = pa.array([row[name] for row in rows], type=kind)
        return pa.table(columns)


def _holds_paths(values: np.ndarray) -> bool:
    """Paths are passed through (they name the row); decoded pixels and encoded bytes are not (they are big)."""
    return values.dtype.kind == "U" or (values.dtype == object and all(isinstance(v, str) for v in values))


def _plain(values: np.ndarray) -> list:
    """A passed-through numpy column as plain Python values (pyarrow infers the type from them)."""
    return values.tolist() if values.dtype != object else list(values)


def _result_row(item: StreamItem) -> dict[str, Any]:
    if not item.ok:
        return {"score": math.nan, "boxes": [], "labels": [], "class_names": [], "confidences": [],
                "text_truncated": None, "image_width": None, "image_height": None, "error": item.error}
    result = item.result
    detections = result.detections
    return {"score": result.score, "boxes": [list(d.box) for d in detections],
            "labels": [d.label for d in detections], "class_names": [d.class_name for d in detections],
            "confidences": [d.confidence for d in detections], "text_truncated": result.text_truncated,
            "image_width": result.image_size[0], "image_height": result.image_size[1], "error": None}


def _result_types(pa) -> list[tuple[str, Any]]:
    """Fixed result types, so every batch (all good, all bad, no detections) writes the same Parquet schema."""
    box = pa.list_(pa.float32(), 4)
    return [("score", pa.float32()), ("boxes", pa.list_(box)), ("labels", pa.list_(pa.int32())),
               ("class_names", pa.list_(pa.string())), ("confidences", pa.list_(pa.float32())),
               ("text_truncated", pa.bool_()), ("image_width", pa.int32()), ("image_height", pa.int32()),
               ("error", pa.string())]
