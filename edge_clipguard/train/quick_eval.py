"""Quick validation numbers for smoke runs: loss, score MAE / Pearson r, top-1 box hit rate.

(The full evaluation with per-domain metrics and COCO mAP belongs to the evaluate command.)
"""

from __future__ import annotations

import numpy as np
import torch

from .loop import batch_losses
from .losses import weighted_total


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of x1y1x2y2 boxes a [N, 4] and b [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=-1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@torch.no_grad()
def quick_eval(model, loader) -> dict[str, float]:
    model.eval()
    losses, pred_scores, true_scores, hits, with_image = [], [], [], 0, 0
    for batch in loader:
        losses.append(float(weighted_total(batch_losses(model, batch))))
        score, boxes, confidences, labels = model.decode(
            model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"]))
        pred_scores += score.tolist()
        true_scores += batch["score"].tolist()
        for i, has_image in enumerate(batch["has_image"].tolist()):
            if not has_image or len(batch["boxes"][i]) == 0:
                continue
            with_image += 1
            iou = box_iou(boxes[i, :1].numpy(), batch["boxes"][i].numpy())[0]
            same_class = batch["labels"][i].numpy() == int(labels[i, 0])
            hits += int(bool(np.any((iou >= 0.5) & same_class)))
    pred, true = np.asarray(pred_scores), np.asarray(true_scores)
    pearson = float(np.corrcoef(pred, true)[0, 1]) if len(pred) > 1 and pred.std() > 0 else float("nan")
    model.train()
    return {"loss": float(np.mean(losses)), "score_mae": float(np.mean(np.abs(pred - true))),
            "score_pearson": pearson, "top1_hit": hits / max(1, with_image)}
