"""Training losses as a dict of named terms, combined by a dict of weights (DETR style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_WEIGHTS = {"score": 1.0, "heatmap": 1.0, "size": 0.5, "offset": 1.0}


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
                       beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss over [N, C, H, W]; normalised by the number of peaks."""
    prob = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    pos_loss = -torch.log(prob) * (1 - prob) ** alpha * positive
    neg_loss = -torch.log(1 - prob) * prob**alpha * (1 - target) ** beta * (1 - positive)
    return (pos_loss.sum() + neg_loss.sum()) / positive.sum().clamp(min=1.0)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the cells in ``mask`` [N, H, W] of two-channel maps [N, 2, H, W]."""
    weight = mask[:, None].float().expand_as(pred)
    return (F.l1_loss(pred.float(), target, reduction="none") * weight).sum() / weight.sum().clamp(min=1.0)


def compute_losses(raw: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], score: torch.Tensor,
                   has_image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Named loss terms. Box terms use only samples that have an image."""
    terms = {"score": F.smooth_l1_loss(raw["score"].float(), score, beta=1.0)}
    if bool(has_image.any()):
        keep = has_image
        terms["heatmap"] = focal_heatmap_loss(raw["heatmap"][keep], targets["heatmap"][keep])
        terms["size"] = masked_l1(raw["log_size"][keep], targets["log_size"][keep], targets["center_mask"][keep])
        terms["offset"] = masked_l1(raw["offset"][keep], targets["offset"][keep], targets["center_mask"][keep])
    return terms


def weighted_total(terms: dict[str, torch.Tensor], weights: dict[str, float] = DEFAULT_WEIGHTS) -> torch.Tensor:
    return sum(weights.get(name, 1.0) * value for name, value in terms.items())
