"""Quick validation numbers for smoke runs: loss, score MAE / Pearson r, top-1 box hit rate.

(The full evaluation with per-domain metrics and COCO mAP belongs to the evaluate command.)
"""

from __future__ import annotations

import numpy as np
import torch

from ..boxes import box_iou_xyxy
from .loop import batch_losses
from .losses import weighted_total
from .metrics import regression_metrics


@torch.no_grad()
def quick_eval(model, loader) -> dict[str, float]:
    model.eval()
    losses, pred_scores, true_scores, hits, with_image = [], [], [], 0, 0
    for batch in loader:
        losses.append(float(weighted_total(batch_losses(model, batch))))
        score, boxes, confidences, labels = model.decode(
            model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"]))
        pred_scores += score.tolist()
        has_score = batch.get("has_score", torch.ones_like(batch["has_image"])).tolist()
        true_scores += [t if scored else float("nan") for t, scored in zip(batch["score"].tolist(), has_score)]
        for i, has_image in enumerate(batch["has_image"].tolist()):
            if not has_image or len(batch["boxes"][i]) == 0:
                continue
            with_image += 1
            iou = box_iou_xyxy(boxes[i, :1].numpy(), batch["boxes"][i].numpy())[0]
            same_class = batch["labels"][i].numpy() == int(labels[i, 0])
            hits += int(bool(np.any((iou >= 0.5) & same_class)))
    scores = regression_metrics(pred_scores, true_scores)  # the rows with a score only
    model.train()
    return {"loss": float(np.mean(losses)), "score_mae": scores["mae"], "score_pearson": scores["pearson"],
            "top1_hit": hits / max(1, with_image)}
