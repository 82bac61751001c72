"""A compact, seeded training loop: AdamW, warm-up + cosine, global-norm gradient clipping.

This is the foundation's loop (used by the demo's short smoke run and the tests); the full
trainer with AMP, accumulation, clip modes, checkpoints and DDP builds on these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model.clipguard import BOX_STRIDE, ClipGuardFusion
from .losses import DEFAULT_WEIGHTS, compute_losses, weighted_total
from .targets import box_targets

PRETRAINED_TOWERS = ("text_tower", "image_tower")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 50
    batch_size: int = 8
    lr: float = 3e-4
    tower_lr_scale: float = 0.1  # pretrained towers move slower than the new fusion and heads
    weight_decay: float = 0.05
    warmup_steps: int = 5
    clip_norm: float = 1.0
    seed: int = 0


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: ClipGuardFusion, cfg: TrainConfig) -> torch.optim.AdamW:
    towers, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (towers if name.split(".")[0] in PRETRAINED_TOWERS else rest).append(param)
    groups = [{"params": rest, "lr": cfg.lr}, {"params": towers, "lr": cfg.lr * cfg.tower_lr_scale}]
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def batch_losses(model: ClipGuardFusion, batch: dict) -> dict[str, torch.Tensor]:
    """Forward one collated batch and return the named loss terms."""
    raw = model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
    grid = raw["heatmap"].shape[-1]
    targets = box_targets(batch["boxes"], batch["labels"], model.cfg.num_classes, grid, BOX_STRIDE)
    return compute_losses(raw, targets, batch["score"], batch["has_image"])


def train(model: ClipGuardFusion, loader_factory, cfg: TrainConfig, progress: bool = True) -> list[dict]:
    """Run ``cfg.steps`` optimiser steps over batches from ``loader_factory(epoch)``; return per-step logs."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    model.train()
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, cfg.warmup_steps, cfg.steps))
    history, step, epoch = [], 0, 0
    bar = tqdm(total=cfg.steps, desc="train", disable=not progress, leave=False)
    while step < cfg.steps:
        for batch in loader_factory(epoch):
            terms = batch_losses(model, batch)
            loss = weighted_total(terms, DEFAULT_WEIGHTS)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            optimizer.step()
            scheduler.step()
            history.append({"step": step, "loss": float(loss.detach()), "grad_norm": float(grad_norm),
                            **{k: float(v.detach()) for k, v in terms.items()}})
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
            bar.update(1)
            step += 1
            if step >= cfg.steps:
                break
        epoch += 1
    bar.close()
    return history
