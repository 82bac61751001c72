"""Unsupervised domain adaptation: make the features the score head reads look alike on the
labelled source rows and on unlabelled target rows (another text domain), so what the head learned
on the source carries over.

Both methods act on the pooled fused text features (``fused_text_embed``, the score head's input)
of a source batch and a target batch of the same size, and add one named term, ``domain``:

- ``mmd`` (Long et al. 2015, DAN): squared maximum mean discrepancy with a Gaussian kernel, a sum
  over bandwidths spread around the batch's mean squared distance (one fixed bandwidth is either
  flat or spiky as the features' scale drifts in training). No parameters; 0 for identical batches.
- ``dann`` (Ganin & Lempitsky 2015): a small source-vs-target classifier behind a gradient-reversal
  layer. The classifier learns to tell the domains apart; the reversed gradient pushes the model
  to make that impossible. The reversal's coefficient ramps 2/(1+exp(-10p))-1 over training
  progress p in [0, 1], so the early, random features are not scrambled.

The trainer gets a ``DomainAdapter`` and the target dataset as explicit arguments; the adapter's
classifier parameters are an extra optimiser group. Target rows are unlabelled: only their
features are used, never their scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DOMAIN_ADAPT_METHODS = ("mmd", "dann")
MMD_BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coefficient * grad, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity forward; the backward multiplies the gradient by ``-coefficient``."""
    return _GradReverse.apply(x, coefficient)


def dann_coefficient(progress: float) -> float:
    """DANN's ramp: 0 at the start of training, ~1 at the end (2/(1+exp(-10p))-1)."""
    return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0


def gaussian_mmd(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Biased MMD^2 estimate between two batches [N, D], [M, D] with a multi-bandwidth Gaussian kernel."""
    x = torch.cat([source.float(), target.float()])
    d2 = torch.cdist(x, x).pow(2)
    base = d2.detach().sum() / max(1, x.shape[0] ** 2 - x.shape[0])
    base = base.clamp(min=1e-6)
    kernel = sum(torch.exp(-d2 / (base * s)) for s in MMD_BANDWIDTH_SCALES)
    n = source.shape[0]
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


class DomainAdapter(nn.Module):
    """``method`` mmd or dann over features of width ``dim``; ``loss(source, target, progress)``."""

    def __init__(self, method: str, dim: int, hidden: int = 64):
        super().__init__()
        if method not in DOMAIN_ADAPT_METHODS:
            raise ValueError(f"domain adaptation must be one of {DOMAIN_ADAPT_METHODS}, got {method!r}")
        self.method = method
        self.classifier = (nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))
                           if method == "dann" else None)

    def loss(self, source: torch.Tensor, target: torch.Tensor, progress: float) -> torch.Tensor:
        if self.method == "mmd":
            return gaussian_mmd(source, target)
        features = grad_reverse(torch.cat([source, target]).float(), dann_coefficient(progress))
        labels = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(features.device)
        return F.binary_cross_entropy_with_logits(self.classifier(features).squeeze(-1), labels)
