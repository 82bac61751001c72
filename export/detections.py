"""Order-independent comparison of one runtime's outputs with its PyTorch reference.

The graph ends in TopK over the peak-kept heat map. Where peaks tie, which tied cell fills a top-K
slot is each runtime's own choice (ONNX Runtime takes the lower index; PyTorch promises no order),
and a barely trained model ties a lot: dead ReLUs in the box trunk leave whole regions at the
heat-map bias, a plateau of equal peaks. Compared slot by slot, two correct runtimes then differ by
whole cells (boxes off by 24 px and more), and the export of a 6-step checkpoint failed.

So each detection of the runtime under test must be one the reference *could* have returned: a
cell of the reference's dense decode (every cell, ``DENSE_KEYS``) of the same class, with a
confidence within ``conf_tol``, taking the candidate box nearest to it; distinct detections take
distinct cells. The sorted confidences must equal the reference's top-K ones. A wrong axis or a lost
scale moves each box away from every candidate of its class and confidence, so it still fails.

Errors per output (``OutputError.max_abs``): score and confidences the largest absolute difference
(confidences sorted per row), boxes the largest distance to the matched candidate (pixels, max over
the 4 coordinates), labels the number of detections no candidate of their class and confidence
explains. NaN counts as an infinite error, never as a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import BOXES, CONFIDENCES, LABELS, SCORE

DENSE_BOXES, DENSE_CONFIDENCES, DENSE_LABELS = "dense_boxes", "dense_confidences", "dense_labels"
DENSE_KEYS = (DENSE_BOXES, DENSE_CONFIDENCES, DENSE_LABELS)


@dataclass(frozen=True)
class OutputError:
    """Largest deviation of one output between a runtime and its PyTorch reference."""

    name: str
    max_abs: float
    max_rel: float


def _error(name: str, diff: np.ndarray, ref: np.ndarray) -> OutputError:
    diff = np.nan_to_num(diff.astype(np.float64), nan=np.inf)
    rel = diff / np.maximum(np.abs(ref.astype(np.float64)), 1e-6)
    return OutputError(name, float(diff.max(initial=0.0)), float(rel.max(initial=0.0)))


def match_detections(boxes: np.ndarray, confidences: np.ndarray, labels: np.ndarray,
                     dense_boxes: np.ndarray, dense_confidences: np.ndarray, dense_labels: np.ndarray,
                     conf_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """One row: detections [K] vs candidate cells [N] -> (matched candidate index [K], -1 where none;
    box distance [K], inf where none). Most confident first, each to the nearest free candidate."""
    free = np.ones(len(dense_confidences), dtype=bool)
    index = np.full(len(confidences), -1, dtype=np.int64)
    distance = np.full(len(confidences), np.inf)
    for k in np.argsort(-confidences, kind="stable"):
        allowed = free & (dense_labels == labels[k]) & (np.abs(dense_confidences - confidences[k]) <= conf_tol)
        if not allowed.any():
            continue
        dist = np.where(allowed, np.abs(dense_boxes - boxes[k]).max(axis=1), np.inf)
        j = int(np.nan_to_num(dist, nan=np.inf).argmin())
        index[k], distance[k], free[j] = j, dist[j], False
    return index, distance


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                    conf_tol: float) -> list[OutputError]:
    """``expected``: the reference's outputs plus ``DENSE_KEYS``; ``actual``: the runtime's outputs.
    Returns one OutputError per output name (see the module docstring for what each measures)."""
    score = _error(SCORE, np.abs(actual[SCORE].astype(np.float64) - expected[SCORE]), expected[SCORE])
    ref_sorted = -np.sort(-expected[CONFIDENCES].astype(np.float64), axis=1)
    got_sorted = -np.sort(-actual[CONFIDENCES].astype(np.float64), axis=1)
    confidences = _error(CONFIDENCES, np.abs(got_sorted - ref_sorted), ref_sorted)
    box_diffs, box_refs, unmatched = [], [], 0
    for row in range(len(actual[CONFIDENCES])):
        dense = [expected[key][row] for key in DENSE_KEYS]
        index, distance = match_detections(actual[BOXES][row], actual[CONFIDENCES][row], actual[LABELS][row],
                                           *dense, conf_tol)
        found = index >= 0
        unmatched += int((~found).sum())
        box_diffs.append(distance[found])
        box_refs.append(np.abs(dense[0][index[found]]).max(axis=1, initial=0.0))
    boxes = _error(BOXES, np.concatenate(box_diffs), np.concatenate(box_refs))
    return [score, boxes, confidences, OutputError(LABELS, float(unmatched), float(unmatched))]


def merge_worst(worst: dict[str, OutputError], errors: list[OutputError]) -> dict[str, OutputError]:
    """Keep, per output, the error with the larger ``max_abs`` (over batches and feeds)."""
    for err in errors:
        if err.name not in worst or err.max_abs > worst[err.name].max_abs:
            worst[err.name] = err
    return worst
