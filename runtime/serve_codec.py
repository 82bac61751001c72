"""serve's wire format, pure (no PyTriton): what a request holds and what a response holds.

Inputs ``text`` and ``image`` (BYTES, shape [batch, 1]: UTF-8 text and an encoded image file, never a path);
outputs ``score`` [batch, 1], ``boxes`` [batch, K, 4] in the original image's pixels, ``confidences`` [batch, K],
``labels`` [batch, K] (-1 past ``count``), ``count`` [batch, 1] and ``error`` [batch, 1] (BYTES: empty, or why that
item was refused: in a dynamic batch with good requests a bad one is answered in its own ``error`` row, with
zeros elsewhere, so it fails no other request). Elements above their size limits are refused before anything is
decoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

from ..contract import BOXES, CONFIDENCES, LABELS, SCORE
from .errors import InputError
from .results import Result
from .text_stage import MAX_TEXT_BYTES

MODEL_NAME = "clipguard"
TEXT = "text"
IMAGE = "image"
# Largest request elements accepted, checked before anything is decoded: a text as the Predictor's own limit,
# an image file far above any photo within the pixel limit (a 12 MP JPEG is ~5 MB, a 24 MP PNG ~70 MB).
MAX_IMAGE_BYTES = 96 * 1024 * 1024
COUNT = "count"
ERROR = "error"
PAD_LABEL = -1
OUTPUT_NAMES = (SCORE, BOXES, CONFIDENCES, LABELS, COUNT, ERROR)


def _as_bytes(value: object, name: str, index: int) -> bytes:
    """A BYTES element as plain ``bytes`` of at most its input's limit; anything else (a str above all) is
    refused, so a path never reaches the image loader."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InputError(f"{name} #{index}: expected BYTES, got {type(value).__name__}")
    limit = MAX_TEXT_BYTES if name == TEXT else MAX_IMAGE_BYTES
    if len(value) > limit:
        raise InputError(f"{name} #{index}: {len(value):,} bytes is above the {limit:,}-byte limit for {name!r}")
    return bytes(value)


def request_items(data: Mapping[str, np.ndarray]) -> list[tuple[bytes, bytes]]:
    """(text, image) byte pairs of one request; InputError names a missing input, a wrong shape or a
    mismatch between the two inputs' batch sizes."""
    columns = []
    for name in (TEXT, IMAGE):
        if name not in data:
            raise InputError(f"input {name!r} is missing; send {TEXT!r} and {IMAGE!r} (BYTES, shape [batch, 1])")
        array = np.asarray(data[name])
        if array.ndim != 2 or array.shape[1] != 1 or array.shape[0] < 1:
            raise InputError(f"input {name!r} has shape {list(array.shape)}; expected [batch, 1] with batch >= 1")
        columns.append([_as_bytes(v, name, i) for i, v in enumerate(array[:, 0])])
    texts, images = columns
    if len(texts) != len(images):
        raise InputError(f"got {len(texts)} texts but {len(images)} images; send one image per text")
    return list(zip(texts, images))


def pack_results(results: Sequence[Result | str], top_k: int) -> dict[str, np.ndarray]:
    """Results -> the server's output arrays: detections padded to ``top_k`` rows, ``count`` valid; an item that
    is a message (a refused item) gets zeros, ``count`` 0 and the message in ``error``."""
    n = len(results)
    out = {SCORE: np.zeros((n, 1), dtype=np.float32),
           BOXES: np.zeros((n, top_k, 4), dtype=np.float32), CONFIDENCES: np.zeros((n, top_k), dtype=np.float32),
           LABELS: np.full((n, top_k), PAD_LABEL, dtype=np.int64), COUNT: np.zeros((n, 1), dtype=np.int32),
           ERROR: np.array([[b""] for _ in range(n)], dtype=np.object_).reshape(n, 1)}
    for i, result in enumerate(results):
        if isinstance(result, str):
            out[ERROR][i, 0] = result.encode("utf-8")
            continue
        out[SCORE][i, 0] = result.score
        detections = result.detections[:top_k]
        out[COUNT][i, 0] = len(detections)
        for j, det in enumerate(detections):
            out[BOXES][i, j] = det.box
            out[CONFIDENCES][i, j] = det.confidence
            out[LABELS][i, j] = det.label
    return out


def call_error(messages: Sequence[tuple[int, str]], requests: int) -> str:
    """One error line for a call whose every request was bad (nobody else to answer): each request's reason."""
    if requests == 1:
        return "; ".join(m for _, m in messages)
    return "; ".join(f"request {i + 1} of {requests}: {m}" for i, m in messages)


def manifest_parameters(manifest) -> dict[str, str]:
    """What a client needs to read the outputs (model config ``parameters`` are strings); triton_repo uses it too."""
    return {"class_names": json.dumps(list(manifest.class_names)),
            "score_range": json.dumps(list(manifest.score_range)), "top_k": str(manifest.top_k)}
