"""Knowledge distillation: a frozen teacher checkpoint's soft targets for a smaller student.

Why soft targets: a teacher's score is a dense, low-noise target for every row (a VADER rating is
one noisy human label) and its heat map says how much every cell looks like each class, not only
where the few ground-truth centres are, so a small student learns more from the same steps
(Hinton et al. 2015; for dense heads, as in distilled CenterNet/YOLO students). The ground-truth
terms stay; these two are added:

- ``distill_score``: MSE between the student's and the teacher's 0-10 score, on every row.
- ``distill_heatmap``: binary cross-entropy of the student's heat-map logits against the teacher's
  sigmoid heat map, resized to the student's grid, minus the teacher map's own entropy (so the term
  is the per-cell KL divergence: 0 when the student matches, whatever the teacher's confidence),
  summed over cells and divided by the teacher map's total probability (its soft count of objects),
  as the focal term is divided by the number of peaks; only on rows that have an image.

The teacher sees the same batch at its own input sizes: the letterboxed pixel batch is resized to
the teacher's ``image_size`` (a letterbox is a uniform scale, so resizing it is letterboxing at the
other size) and the token ids are padded or cut to its ``max_length`` (every config shares the
MiniLM WordPiece vocabulary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DISTILL_TERMS = ("distill_score", "distill_heatmap")


def resize_pixels(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """A letterboxed batch [B, 3, S, S] at another side ``size`` (unchanged when S == size)."""
    if pixels.shape[-1] == size:
        return pixels
    return F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def fit_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, length: int) -> tuple[torch.Tensor, ...]:
    """Token ids and mask padded (with 0, the [PAD] id) or cut to ``length`` columns."""
    have = input_ids.shape[1]
    if have == length:
        return input_ids, attention_mask
    if have > length:
        return input_ids[:, :length], attention_mask[:, :length]
    pad = (0, length - have)
    return F.pad(input_ids, pad), F.pad(attention_mask, pad)


def teacher_heatmap_on_grid(teacher_logits: torch.Tensor, grid: int) -> torch.Tensor:
    """The teacher's heat-map probabilities [B, C, h, w] resized to the student's ``grid`` x ``grid``."""
    prob = torch.sigmoid(teacher_logits.float())
    if prob.shape[-1] == grid and prob.shape[-2] == grid:
        return prob
    return F.interpolate(prob, size=(grid, grid), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def soft_heatmap_loss(student_logits: torch.Tensor, teacher_prob: torch.Tensor) -> torch.Tensor:
    """Per-cell KL(teacher || student) of Bernoulli maps, BCE(student, teacher) - H(teacher), summed and
    divided by the teacher's total probability (at least 1)."""
    bce = F.binary_cross_entropy_with_logits(student_logits.float(), teacher_prob, reduction="none")
    p = teacher_prob.clamp(1e-6, 1 - 1e-6)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    return (bce - entropy).sum() / teacher_prob.sum().clamp(min=1.0)


def distill_terms(student_raw: dict[str, torch.Tensor], teacher_raw: dict[str, torch.Tensor],
                  has_image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The two named terms from the student's and the teacher's raw outputs (teacher detached)."""
    terms = {"distill_score": F.mse_loss(student_raw["score"].float(), teacher_raw["score"].detach().float())}
    heatmap = student_raw["heatmap"]
    keep = has_image.to(heatmap.device)
    if bool(keep.any()):
        target = teacher_heatmap_on_grid(teacher_raw["heatmap"].detach()[keep], heatmap.shape[-1])
        terms["distill_heatmap"] = soft_heatmap_loss(heatmap[keep], target)
    else:  # zero but connected, like the ground-truth box terms on a text-only batch
        terms["distill_heatmap"] = heatmap.float().sum() * 0.0
    return terms


class Distiller:
    """A frozen teacher (eval mode, no gradients) and the soft-target terms it adds to a batch."""

    def __init__(self, teacher: nn.Module, device: torch.device | str = "cpu"):
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        self.image_size = teacher.cfg.image_size
        self.max_length = teacher.cfg.text.max_length

    def check_compatible(self, student_cfg) -> None:
        """Same classes in the same order, or the heat-map channels would not mean the same thing."""
        from ..errors import ClipGuardError

        if tuple(student_cfg.heads.class_names) != tuple(self.teacher.cfg.heads.class_names):
            raise ClipGuardError(f"--teacher: its classes {list(self.teacher.cfg.heads.class_names)} differ from "
                                 f"the student's {list(student_cfg.heads.class_names)}")

    @torch.no_grad()
    def teacher_outputs(self, batch: dict) -> dict[str, torch.Tensor]:
        ids, mask = fit_tokens(batch["input_ids"], batch["attention_mask"], self.max_length)
        return self.teacher(ids, mask, resize_pixels(batch["pixel_values"], self.image_size))

    def terms(self, student_raw: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        return distill_terms(student_raw, self.teacher_outputs(batch), batch["has_image"])
