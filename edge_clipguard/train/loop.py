"""Pieces of one training step shared by the trainer and the quick evaluation."""

from __future__ import annotations

import math

import torch

from ..model.clipguard import BOX_STRIDE
from .losses import compute_losses
from .targets import box_targets

PRETRAINED_TOWERS = ("text_tower", "image_tower")


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW with two groups: new layers at ``cfg.lr``, pretrained towers at ``lr * tower_lr_scale``."""
    towers, rest = [], []
    for name, param in getattr(model, "module", model).named_parameters():
        if param.requires_grad:
            (towers if name.split(".")[0] in PRETRAINED_TOWERS else rest).append(param)
    groups = [{"params": rest, "lr": cfg.lr}, {"params": towers, "lr": cfg.lr * cfg.tower_lr_scale}]
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def batch_losses(model: torch.nn.Module, batch: dict, with_infonce: bool = False) -> dict[str, torch.Tensor]:
    """Forward one collated batch (model may be DDP-wrapped) and return the named loss terms."""
    raw = model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
    grid = raw["heatmap"].shape[-1]
    num_classes = raw["heatmap"].shape[1]
    targets = box_targets(batch["boxes"], batch["labels"], num_classes, grid, BOX_STRIDE)
    targets = {k: v.to(raw["heatmap"].device) for k, v in targets.items()}
    return compute_losses(raw, targets, batch["score"], batch["has_image"], with_infonce, batch.get("has_score"))
