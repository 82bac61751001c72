"""Accuracy of exported artifacts against the PyTorch fp32 model on labelled manifest rows.

The same rows go through PyTorch and through ONNX Runtime; both are scored against the labels
(score Pearson r, mAP50 by pycocotools) and against each other (score r, mean |Δscore|), so
the summary can say what quantization cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..contract import INPUT_NAMES


@dataclass(frozen=True)
class Predictions:
    scores: np.ndarray  # [N]
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (boxes [K,4], confidences [K], labels [K])


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


def batches(dataset, batch_size: int):
    """Numpy feeds (contract input names) and ground truth, batch by batch."""
    import torch

    from ..data.dataset import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in loader:
        feed = {name: batch[name].numpy() for name in INPUT_NAMES}
        truth = [(b.numpy(), lab.numpy(), bool(h)) for b, lab, h in zip(batch["boxes"], batch["labels"],
                                                                         batch["has_image"])]
        yield feed, truth


def _collect(outputs: list[tuple[np.ndarray, ...]]) -> Predictions:
    scores = np.concatenate([o[0] for o in outputs])
    detections = [(boxes[i], conf[i], labels[i]) for _, boxes, conf, labels in outputs for i in range(len(boxes))]
    return Predictions(scores, detections)


def predict_onnx(path: str | Path, dataset, batch_size: int = 8, threads: int = 2) -> Predictions:
    import onnxruntime as ort

    from ..contract import OUTPUT_NAMES

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return _collect([tuple(session.run(list(OUTPUT_NAMES), feed)) for feed, _ in batches(dataset, batch_size)])


def predict_torch(model, dataset, batch_size: int = 8) -> Predictions:
    import torch

    from .onnx_export import run_torch

    with torch.no_grad():
        outs = [run_torch(model, feed) for feed, _ in batches(dataset, batch_size)]
    return _collect([(o["score"], o["boxes"], o["confidences"], o["labels"]) for o in outs])


def ground_truth(dataset) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, bool]]]:
    scores = np.asarray([s.score for s in dataset.samples], dtype=np.float64)
    truth = [t for _, batch in batches(dataset, 16) for t in batch]
    return scores, truth


def accuracy(pred: Predictions, reference: Predictions, true_scores: np.ndarray, truth, num_classes: int) -> Accuracy:
    from ..train.metrics import coco_map, regression_metrics

    keep = [i for i, (boxes, _, has_image) in enumerate(truth) if has_image and len(boxes)]
    det = coco_map([truth[i][:2] for i in keep], [pred.detections[i] for i in keep], num_classes)
    vs_fp32 = regression_metrics(pred.scores, reference.scores)
    return Accuracy(regression_metrics(pred.scores, true_scores)["pearson"], det["map50"], vs_fp32["pearson"],
                    vs_fp32["mae"])
