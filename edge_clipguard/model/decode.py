"""In-graph decode of the dense box head into fixed-size outputs (no data-dependent shapes).

CenterNet-style: a class heatmap at stride ``s``; a peak is a cell equal to the 3x3 max-pool of
its neighbourhood; the top K peaks over all classes and cells become boxes from the predicted
log-size and sub-cell offset at that cell. Output boxes are x1,y1,x2,y2 in input pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_LOG_SIZE = 6.0  # exp(6) cells = 403 cells: far beyond any input; keeps exp finite in fp16


def keep_peaks(heat: torch.Tensor) -> torch.Tensor:
    """heat [B, C, H, W] probabilities -> same, zero except at 3x3 local maxima."""
    pooled = F.max_pool2d(heat, kernel_size=3, stride=1, padding=1)
    return heat * (pooled == heat).to(heat.dtype)


def sizes_to_pixels(log_size: torch.Tensor, stride: int) -> torch.Tensor:
    """Predicted log(width, height in cells) -> pixels."""
    return torch.exp(log_size.clamp(max=MAX_LOG_SIZE)) * stride


def decode_boxes(heatmap_logits: torch.Tensor, log_size: torch.Tensor, offset: torch.Tensor,
                 stride: int, top_k: int, peaks_only: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """heatmap_logits [B, C, H, W], log_size [B, 2, H, W], offset [B, 2, H, W] (cells) ->
    boxes [B, K, 4] x1y1x2y2 input pixels, confidences [B, K], labels int64 [B, K]. ``peaks_only=False``
    ranks every cell, not just the 3x3 local maxima (export's parity check: near-tied neighbours swap)."""
    batch, _, height, width = heatmap_logits.shape
    heat = torch.sigmoid(heatmap_logits)
    heat = keep_peaks(heat) if peaks_only else heat
    confidences, index = torch.topk(heat.flatten(1), top_k, dim=1)
    cells = height * width
    labels = torch.div(index, cells, rounding_mode="floor")
    position = index - labels * cells
    ys = torch.div(position, width, rounding_mode="floor")
    xs = position - ys * width
    gather_at = position[:, None, :].expand(batch, 2, top_k)
    size = torch.gather(sizes_to_pixels(log_size, stride).flatten(2), 2, gather_at)  # [B, 2, K]
    shift = torch.gather(offset.flatten(2), 2, gather_at)
    cx = (xs.to(heat.dtype) + shift[:, 0]) * stride
    cy = (ys.to(heat.dtype) + shift[:, 1]) * stride
    half_w, half_h = size[:, 0] / 2, size[:, 1] / 2
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)
    return boxes, confidences, labels
