"""Output heads on the fused tokens: the 0-10 text score and the dense box head."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..contract import SCORE_MAX, SCORE_MIN

HEATMAP_PRIOR = 0.01  # initial foreground probability, as in focal-loss detectors


def masked_mean(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real (mask = 1) tokens: [B, L, D] -> [B, D]."""
    mask = attention_mask.to(tokens.dtype)[..., None]
    return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class ScoreHead(nn.Module):
    """Masked mean of fused text tokens [B, L, D] -> MLP -> sigmoid -> score [B] in [0, 10]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, text_tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = masked_mean(text_tokens, attention_mask)
        return SCORE_MIN + (SCORE_MAX - SCORE_MIN) * torch.sigmoid(self.mlp(pooled).squeeze(-1))


class ReferHead(nn.Module):
    """Masked mean of fused text tokens -> one logit per class: does the text ask for that class?

    Its log-sigmoid is added to the box heatmap's logits, so a class the text does not name is
    suppressed everywhere. This is the text -> box link made explicit: the cross-attention alone
    has to learn a multiplicative "this shape AND the text names it" through convolutions, which
    took far more steps than a CPU run affords. Trained directly by the ``refer`` loss term."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, text_tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.linear(masked_mean(text_tokens, attention_mask))


class BoxHead(nn.Module):
    """Fused image tokens of three levels -> stride-8 maps: class heatmap logits, log-size, offset.

    The coarser levels are upsampled and added to the stride-8 level (a light FPN), because
    object sizes span ~20-160 px and stride 8 alone sees little context.
    """

    def __init__(self, dim: int, channels: int, num_classes: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(dim, channels, 1) for _ in range(3))
        self.trunk = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                   nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.heatmap = nn.Conv2d(channels, num_classes, 1)
        self.log_size = nn.Conv2d(channels, 2, 1)
        self.offset = nn.Conv2d(channels, 2, 1)
        nn.init.constant_(self.heatmap.bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
        nn.init.constant_(self.log_size.bias, 1.0)
        nn.init.constant_(self.offset.bias, 0.5)

    def forward(self, maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        p8, p16, p32 = (lat(m) for lat, m in zip(self.lateral, maps))
        p16 = p16 + F.interpolate(p32, scale_factor=2.0, mode="nearest")
        p8 = p8 + F.interpolate(p16, scale_factor=2.0, mode="nearest")
        x = self.trunk(p8)
        return {"heatmap": self.heatmap(x), "log_size": self.log_size(x), "offset": self.offset(x)}
