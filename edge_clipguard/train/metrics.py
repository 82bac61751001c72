"""Evaluation metrics: score regression per domain, and COCO mAP computed by pycocotools."""

from __future__ import annotations

import contextlib
import io

import numpy as np


def pearson(a, b) -> float:
    """Pearson r of two equal-length sequences; NaN when fewer than two values or either is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Pearson r, MAE and R^2 of predicted vs true scores. A NaN true score means the row has no
    score target (imported detection data): it is left out, and ``n`` counts the scored rows."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    scored = ~np.isnan(true)
    pred, true = pred[scored], true[scored]
    n = len(pred)
    if n == 0:
        return {"n": 0, "pearson": float("nan"), "mae": float("nan"), "r2": float("nan")}
    ss_res = float(((true - pred) ** 2).sum())
    ss_tot = float(((true - true.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return {"n": n, "pearson": pearson(pred, true), "mae": float(np.abs(pred - true).mean()), "r2": r2}


def per_domain_metrics(pred: np.ndarray, true: np.ndarray, domains: list[str | None]) -> dict[str, dict]:
    """Regression metrics for each domain (rows without one are only pooled) and for all rows; rows
    whose true score is NaN (no score) count nowhere."""
    pred, true = np.asarray(pred), np.asarray(true)
    out = {}
    for domain in sorted({d for d in domains if d}):
        keep = np.asarray([d == domain for d in domains])
        out[domain] = regression_metrics(pred[keep], true[keep])
    out["pooled"] = regression_metrics(pred, true)
    return out


def coco_map(ground_truth: list[tuple[np.ndarray, np.ndarray]],
             detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]], num_classes: int) -> dict[str, float]:
    """mAP50 and mAP50-95 with pycocotools.

    ground_truth[i] = (boxes [N, 4] x1y1x2y2, labels [N]); detections[i] = (boxes [K, 4], scores [K],
    labels [K]), one entry per image in the same order.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (boxes, labels) in enumerate(ground_truth):
        images.append({"id": image_id, "width": 1, "height": 1})
        for box, label in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(labels).reshape(-1)):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    for image_id, (boxes, scores, labels) in enumerate(detections):
        for box, score, label in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1),
                                     np.asarray(labels).reshape(-1)):
            x1, y1, x2, y2 = (float(v) for v in box)
            if x2 > x1 and y2 > y1:
                results.append({"image_id": image_id, "category_id": int(label), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "score": float(score)})
    if not annotations:
        return {"map50": float("nan"), "map50_95": float("nan")}
    if not results:
        return {"map50": 0.0, "map50_95": 0.0}
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": c} for c in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.maxDets = [1, 10, 100]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map50": float(evaluator.stats[1]), "map50_95": float(evaluator.stats[0])}
