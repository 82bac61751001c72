"""Pieces of one training step shared by the trainer and the quick evaluation, and the run's length."""

from __future__ import annotations

import math

import torch

from ..errors import ClipGuardError
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


def step_limit(epochs: int | None, max_steps: int, grad_accum: int, batches_per_epoch: int) -> tuple[int, str]:
    """(optimiser steps to run, the sentence that says why).

    ``max_steps`` alone runs exactly that many steps over as many epochs as it takes (as in Hugging
    Face and Lightning: it overrides the epoch count); ``epochs`` alone keeps its meaning; both stop
    at whichever comes first; neither is one epoch."""
    per_epoch = max(1, batches_per_epoch // grad_accum)
    if (epochs is not None and epochs < 1) or max_steps < 0:
        raise ClipGuardError(f"train: --epochs must be >= 1 and --max-steps >= 0, got {epochs} and {max_steps}")
    by_epochs = (epochs or 1) * per_epoch
    said = f"{epochs or 1} epoch(s) of {per_epoch} steps"
    if max_steps == 0:
        return by_epochs, f"{by_epochs} steps: {said}"
    if epochs is None:
        return max_steps, f"{max_steps} steps: --max-steps ({per_epoch} steps an epoch)"
    if max_steps < by_epochs:
        return max_steps, f"{max_steps} steps: --max-steps {max_steps} comes before --epochs ({said})"
    if max_steps == by_epochs:
        return by_epochs, f"{by_epochs} steps: --epochs ({said}) and --max-steps {max_steps} agree"
    return by_epochs, f"{by_epochs} steps: --epochs ({said}) comes before --max-steps {max_steps}"


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
    return batch_forward(model, batch, with_infonce)[1]


def batch_forward(model: torch.nn.Module, batch: dict,
                  with_infonce: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(raw outputs, named ground-truth loss terms) of one collated batch; the raw outputs feed the
    optional distillation and domain-adaptation terms."""
    raw = model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
    grid = raw["heatmap"].shape[-1]
    num_classes = raw["heatmap"].shape[1]
    targets = box_targets(batch["boxes"], batch["labels"], num_classes, grid, BOX_STRIDE)
    targets = {k: v.to(raw["heatmap"].device) for k, v in targets.items()}
    return raw, compute_losses(raw, targets, batch["score"], batch["has_image"], with_infonce,
                               batch.get("has_score"))
