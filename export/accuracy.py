"""Accuracy of exported artifacts against the PyTorch fp32 model on labelled manifest rows.

The same rows go through PyTorch and through ONNX Runtime by the package's one evaluation engine
(``edge_clipguard.train.evaluate``); both are scored against the labels (score Pearson r, mAP50 by
pycocotools) and against each other (score r, mean |Δscore|), so the summary can say what
quantization cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.manifest import Sample
from ..train.evaluate import Predictions, score_predictions
from ..train.intervals import Interval, map50_difference, score_r_difference
from ..train.metrics import regression_metrics

MAP_POINT = 0.01  # one point of mAP50: the smallest INT8 cost the summary should be able to show


@dataclass(frozen=True)
class Accuracy:
    score_r: float  # vs labels
    map50: float  # vs labels (scene rows only)
    score_r_vs_fp32: float
    score_mae_vs_fp32: float
    # This artifact minus PyTorch fp32 on the same rows, with paired-bootstrap 95 % intervals (None for fp32 itself).
    map50_delta: Interval | None = None
    score_r_delta: Interval | None = None

    def describe(self, reference: Accuracy | None = None) -> str:
        text = f"score r {self.score_r:.3f}, mAP50 {self.map50:.3f}"
        if reference is not None:
            text += (f" (fp32 {reference.score_r:.3f} / {reference.map50:.3f}); vs fp32: r {self.score_r_vs_fp32:.4f},"
                     f" mean |Δscore| {self.score_mae_vs_fp32:.3f}")
        if self.map50_delta is not None and math.isfinite(self.map50_delta.delta):
            d = self.map50_delta
            text += f"; Δ mAP50 {100 * d.delta:+.1f} pts [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
        if self.score_r_delta is not None and math.isfinite(self.score_r_delta.delta):
            d = self.score_r_delta
            text += f", Δ r {d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
        return text

    def unresolved_note(self) -> str | None:
        """A warning when the rows are too few for the mAP50 interval to resolve one point."""
        d = self.map50_delta
        if d is None or not math.isfinite(d.delta) or d.resolves(MAP_POINT):
            return None
        return (f"{d.rows} validation scenes cannot resolve 1 point of mAP50 (95 % interval of INT8 - fp32: "
                f"{100 * d.low:+.1f} to {100 * d.high:+.1f} points): the differences above are mostly noise; "
                f"pass --val-data with more held-out scenes than {d.rows} to resolve it")


def accuracy(pred: Predictions, reference: Predictions, samples: list[Sample], num_classes: int,
             intervals: bool = False) -> Accuracy:
    """``pred`` scored against the labels of ``samples`` and against the fp32 ``reference`` predictions; with
    ``intervals``, the paired-bootstrap intervals of its mAP50 and score-r differences from the reference."""
    metrics = score_predictions(pred, samples, num_classes)
    vs_fp32 = regression_metrics(pred.scores, reference.scores)
    deltas = (None, None)
    if intervals:
        truth = np.asarray([np.nan if s.score is None else s.score for s in samples], dtype=np.float64)
        deltas = (map50_difference(pred, reference, num_classes), score_r_difference(pred, reference, truth))
    return Accuracy(metrics["score"]["pooled"]["pearson"], metrics["detection"]["map50"], vs_fp32["pearson"],
                    vs_fp32["mae"], *deltas)
