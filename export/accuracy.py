"""Accuracy of exported artifacts against the PyTorch fp32 model on labelled manifest rows.

The same rows go through PyTorch and through ONNX Runtime by the package's one evaluation engine
(``edge_clipguard.train.evaluate``); both are scored against the labels (score Pearson r, mAP50 by
pycocotools) and against each other (score r, mean |Δscore|), so the summary can say what
quantization cost.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.manifest import Sample
from ..train.evaluate import Predictions, score_predictions
from ..train.metrics import regression_metrics


@dataclass(frozen=True)
class Accuracy:
    score_r: float  # vs labels
    map50: float  # vs labels (scene rows only)
    score_r_vs_fp32: float
    score_mae_vs_fp32: float

    def describe(self, reference: Accuracy | None = None) -> str:
        text = f"score r {self.score_r:.3f}, mAP50 {self.map50:.3f}"
        if reference is not None:
            text += (f" (fp32 {reference.score_r:.3f} / {reference.map50:.3f}); vs fp32: r {self.score_r_vs_fp32:.4f},"
                     f" mean |Δscore| {self.score_mae_vs_fp32:.3f}")
        return text


def accuracy(pred: Predictions, reference: Predictions, samples: list[Sample], num_classes: int) -> Accuracy:
    """``pred`` scored against the labels of ``samples`` and against the fp32 ``reference`` predictions."""
    metrics = score_predictions(pred, samples, num_classes)
    vs_fp32 = regression_metrics(pred.scores, reference.scores)
    return Accuracy(metrics["score"]["pooled"]["pearson"], metrics["detection"]["map50"], vs_fp32["pearson"],
                    vs_fp32["mae"])
