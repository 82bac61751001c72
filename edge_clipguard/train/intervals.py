"""Paired-bootstrap 95 % intervals for accuracy differences, so a table says what its validation set can resolve.

Two predictions of the same rows (e.g. INT8 and fp32) are resampled together, rows drawn with replacement, and
the difference of the metric is recomputed on every resample; the 2.5th and 97.5th percentiles bound it. mAP50
is pycocotools' on each resample, so the point estimate and the interval use one definition. On 32-64 scenes a
±5-point interval is common: a "10-point INT8 loss" there is noise, which is what ``resolves`` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .metrics import coco_map, pearson
from .predictions import Predictions

DEFAULT_RESAMPLES = 100


@dataclass(frozen=True)
class Interval:
    """``delta`` = metric(a) - metric(b) on all rows; [low, high] its 95 % paired-bootstrap interval."""

    delta: float
    low: float
    high: float
    rows: int
    resamples: int

    def resolves(self, size: float) -> bool:
        """Whether the interval is narrower than ±``size``: a difference of ``size`` would show."""
        return math.isfinite(self.low) and math.isfinite(self.high) and (self.high - self.low) / 2 < size

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def paired_interval(metric: Callable[[np.ndarray], float], rows: int, resamples: int = DEFAULT_RESAMPLES,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``metric(index array)`` over bootstrap resamples of ``rows`` rows."""
    rng = np.random.default_rng(seed)
    values = [metric(rng.integers(0, rows, rows)) for _ in range(resamples)]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def map50_difference(a: Predictions, b: Predictions, num_classes: int, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = 0) -> Interval:
    """mAP50(a) - mAP50(b) over the rows with an image and a target box, resampling the same images for both."""
    keep = [i for i, (boxes, _, has_image) in enumerate(a.truth) if has_image and len(boxes)]

    def difference(idx: np.ndarray) -> float:
        rows = [keep[i] for i in idx]
        truth = [a.truth[r][:2] for r in rows]
        return (coco_map(truth, [a.detections[r] for r in rows], num_classes)["map50"]
                - coco_map(truth, [b.detections[r] for r in rows], num_classes)["map50"])

    if not keep:
        return Interval(math.nan, math.nan, math.nan, 0, resamples)
    low, high = paired_interval(difference, len(keep), resamples, seed)
    return Interval(difference(np.arange(len(keep))), low, high, len(keep), resamples)


def score_r_difference(a: Predictions, b: Predictions, truth: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                       seed: int = 0) -> Interval:
    """pearson(a, truth) - pearson(b, truth) over the rows that have a true score (NaN elsewhere)."""
    keep = np.flatnonzero(np.isfinite(truth))

    def difference(idx: np.ndarray) -> float:
        rows = keep[idx]
        return pearson(a.scores[rows], truth[rows]) - pearson(b.scores[rows], truth[rows])

    if len(keep) < 3:
        return Interval(math.nan, math.nan, math.nan, int(len(keep)), resamples)
    low, high = paired_interval(difference, len(keep), resamples, seed)
    return Interval(difference(np.arange(len(keep))), low, high, int(len(keep)), resamples)


def metric_intervals(pred: Predictions, true_scores: np.ndarray, num_classes: int,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """95 % bootstrap intervals of one model's mAP50 and pooled score r (``evaluate --json``)."""
    boxed = [i for i, (boxes, _, has_image) in enumerate(pred.truth) if has_image and len(boxes)]
    scored = np.flatnonzero(np.isfinite(true_scores))
    out: dict = {"resamples": resamples}
    if boxed:
        out["map50"] = paired_interval(lambda idx: coco_map([pred.truth[boxed[i]][:2] for i in idx],
                                                            [pred.detections[boxed[i]] for i in idx],
                                                            num_classes)["map50"], len(boxed), resamples, seed)
    if len(scored) >= 3:
        out["score_r"] = paired_interval(lambda idx: pearson(pred.scores[scored[idx]], true_scores[scored[idx]]),
                                         len(scored), resamples, seed)
    return out
