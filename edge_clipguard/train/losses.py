"""Training losses as a dict of named terms, combined by a dict of weights (DETR style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_WEIGHTS = {"score": 1.0, "heatmap": 1.0, "size": 0.5, "offset": 1.0, "refer": 1.0,
                   # only present when configured: train/distill.py (--teacher), train/domain_adapt.py
                   "distill_score": 1.0, "distill_heatmap": 1.0, "domain": 1.0}


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


def info_nce(text_embed: torch.Tensor, image_embed: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """CLIP's symmetric contrastive loss: matching text/image pairs on the diagonal."""
    text = F.normalize(text_embed.float(), dim=-1)
    image = F.normalize(image_embed.float(), dim=-1)
    logits = text @ image.T / temperature
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def compute_losses(raw: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], score: torch.Tensor,
                   has_image: torch.Tensor, with_infonce: bool = False,
                   has_score: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Named loss terms. Box terms use only samples that have an image, the score term only samples
    that have a score (``has_score``; None: all). When a batch has none, a term is zero but still
    connected to the graph, so every parameter gets a gradient (DDP needs that)."""
    scored = torch.ones_like(score, dtype=torch.bool) if has_score is None else has_score.to(score.device)
    if bool(scored.any()):
        terms = {"score": F.smooth_l1_loss(raw["score"][scored].float(), score[scored].float(), beta=1.0)}
    else:
        terms = {"score": raw["score"].float().sum() * 0.0}
    keep = has_image
    if bool(keep.any()):
        terms["heatmap"] = focal_heatmap_loss(raw["heatmap"][keep], targets["heatmap"][keep])
        terms["size"] = masked_l1(raw["log_size"][keep], targets["log_size"][keep], targets["center_mask"][keep])
        terms["offset"] = masked_l1(raw["offset"][keep], targets["offset"][keep], targets["center_mask"][keep])
        terms["refer"] = F.binary_cross_entropy_with_logits(raw["refer_logits"][keep].float(),
                                                            targets["referred"][keep])
    else:
        for name, key in (("heatmap", "heatmap"), ("size", "log_size"), ("offset", "offset"),
                          ("refer", "refer_logits")):
            terms[name] = raw[key].float().sum() * 0.0
    if with_infonce:
        terms["infonce"] = (info_nce(raw["text_embed"][keep], raw["image_embed"][keep]) if int(keep.sum()) > 1
                            else raw["text_embed"].float().sum() * 0.0)
    return terms


def weighted_total(terms: dict[str, torch.Tensor], weights: dict[str, float] = DEFAULT_WEIGHTS) -> torch.Tensor:
    return sum(weights.get(name, 1.0) * value for name, value in terms.items())
