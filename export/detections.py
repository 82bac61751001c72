"""Order-independent comparison of one runtime's outputs with its PyTorch reference.

The graph ends in TopK over the peak-kept heat map. Where peaks tie, which tied cell fills a top-K
slot is each runtime's own choice (ONNX Runtime takes the lower index; PyTorch promises no order),
and a barely trained model ties a lot: dead ReLUs in the box trunk leave whole regions at the
heat-map bias, a plateau of equal peaks. Compared slot by slot, two correct runtimes then differ by
whole cells (boxes off by 24 px and more), and the export of a 6-step checkpoint failed. INT8 adds
near-ties: two neighbouring cells 0.002 apart swap which one is the 3x3 peak, so the INT8 graph
returns a peak the fake-quant reference suppressed (a trained 900-step QAT checkpoint failed on a
0.21 detection its reference had ranked below a neighbour's 0.215).

So the check runs both ways, by class and confidence rather than by slot:

- each detection of the runtime under test must be one the reference *could* have returned: a cell
  of the reference's dense decode (every cell, peak or not, ``DENSE_KEYS``) of the same class, with a
  confidence within ``conf_tol``, taking the candidate box nearest to it; distinct detections take
  distinct cells;
- each reference peak more confident than the runtime's least confident detection (plus ``conf_tol``)
  must be answered by a runtime detection of its class, the nearest in confidence, one each: a peak
  the runtime lost or scored differently shows up here.

A wrong axis or a lost scale moves each box away from every candidate of its class and confidence,
and a broken peak-keep crowds out the reference's lower peaks, so both still fail.

Errors per output (``OutputError.max_abs``): score the largest absolute difference; confidences the
largest difference over both directions (a detection no cell explains: to the nearest cell of its
class; a reference peak with no answer: infinite); boxes the largest distance to the matched
candidate (pixels, max over the 4 coordinates); labels the number of detections no candidate of
their class and confidence explains. NaN counts as an infinite error, never as a pass.
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


def _answer_reference_peaks(ref_conf: np.ndarray, ref_labels: np.ndarray, conf: np.ndarray, labels: np.ndarray,
                            conf_tol: float) -> list[float]:
    """One row: for each reference peak above the runtime's least confident detection (+ ``conf_tol``),
    the confidence difference to the runtime detection of its class nearest in confidence (each used
    once); infinite when none is left."""
    floor = float(np.min(conf, initial=np.inf)) + conf_tol
    free = np.ones(len(conf), dtype=bool)
    diffs = []
    for k in np.argsort(-ref_conf, kind="stable"):
        if not ref_conf[k] > floor:
            break
        gap = np.where(free & (labels == ref_labels[k]), np.abs(conf - ref_conf[k]), np.inf)
        j = int(np.nan_to_num(gap, nan=np.inf).argmin()) if len(gap) else -1
        if j < 0 or not np.isfinite(gap[j]):
            diffs.append(np.inf)
            continue
        free[j] = False
        diffs.append(float(gap[j]))
    return diffs


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                    conf_tol: float) -> list[OutputError]:
    """``expected``: the reference's outputs plus ``DENSE_KEYS``; ``actual``: the runtime's outputs.
    Returns one OutputError per output name (see the module docstring for what each measures)."""
    score = _error(SCORE, np.abs(actual[SCORE].astype(np.float64) - expected[SCORE]), expected[SCORE])
    box_diffs, box_refs, conf_diffs, conf_refs, unmatched = [], [], [], [], 0
    for row in range(len(actual[CONFIDENCES])):
        dense = [expected[key][row] for key in DENSE_KEYS]
        conf = actual[CONFIDENCES][row].astype(np.float64)
        labels = actual[LABELS][row]
        index, distance = match_detections(actual[BOXES][row], conf, labels, *dense, conf_tol)
        found = index >= 0
        unmatched += int((~found).sum())
        box_diffs.append(distance[found])
        box_refs.append(np.abs(dense[0][index[found]]).max(axis=1, initial=0.0))
        dense_conf = dense[1].astype(np.float64)
        for k in range(len(conf)):  # runtime -> reference cells
            same = dense_conf[dense[2] == labels[k]]
            conf_diffs.append(abs(conf[k] - dense_conf[index[k]]) if found[k]
                              else float(np.abs(same - conf[k]).min(initial=np.inf)))
            conf_refs.append(conf[k])
        ref_conf = expected[CONFIDENCES][row].astype(np.float64)
        answers = _answer_reference_peaks(ref_conf, expected[LABELS][row], conf, labels, conf_tol)
        conf_diffs.extend(answers)  # reference peaks -> runtime
        conf_refs.extend(np.sort(ref_conf)[::-1][:len(answers)])
    boxes = _error(BOXES, np.concatenate(box_diffs), np.concatenate(box_refs))
    confidences = _error(CONFIDENCES, np.asarray(conf_diffs, dtype=np.float64), np.asarray(conf_refs, np.float64))
    return [score, boxes, confidences, OutputError(LABELS, float(unmatched), float(unmatched))]


def merge_worst(worst: dict[str, OutputError], errors: list[OutputError]) -> dict[str, OutputError]:
    """Keep, per output, the error with the larger ``max_abs`` (over batches and feeds)."""
    for err in errors:
        if err.name not in worst or err.max_abs > worst[err.name].max_abs:
            worst[err.name] = err
    return worst
