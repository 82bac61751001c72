"""Box targets for the CenterNet-style head: one Gaussian peak per target box, at stride 8.

Peaks are elliptical (sigma = box side / 6 in cells, as in TTFNet) so long thin objects get
long thin peaks. Size is regressed as log(width, height in cells) and the sub-cell offset of
the centre at the peak cell.
"""

from __future__ import annotations

import torch

MIN_SIGMA = 0.5


def box_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor], num_classes: int, grid: int,
                stride: int) -> dict[str, torch.Tensor]:
    """Per-sample boxes [N, 4] (x1y1x2y2, input pixels) and labels [N] ->
    heatmap [B, C, G, G] in [0, 1]; log_size, offset [B, 2, G, G]; center_mask [B, G, G] bool;
    referred [B, C]: 1 for the classes among the sample's target boxes (the classes its text names)."""
    batch = len(boxes)
    heatmap = torch.zeros(batch, num_classes, grid, grid)
    log_size = torch.zeros(batch, 2, grid, grid)
    offset = torch.zeros(batch, 2, grid, grid)
    center_mask = torch.zeros(batch, grid, grid, dtype=torch.bool)
    referred = torch.zeros(batch, num_classes)
    coords = torch.arange(grid, dtype=torch.float32)
    for b, (sample_boxes, sample_labels) in enumerate(zip(boxes, labels)):
        for box, label in zip(sample_boxes.tolist(), sample_labels.tolist()):
            x1, y1, x2, y2 = (v / stride for v in box)
            w, h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = min(max(int(cx), 0), grid - 1), min(max(int(cy), 0), grid - 1)
            sx, sy = max(w / 6, MIN_SIGMA), max(h / 6, MIN_SIGMA)
            gx = torch.exp(-((coords - ix) ** 2) / (2 * sx * sx))
            gy = torch.exp(-((coords - iy) ** 2) / (2 * sy * sy))
            heatmap[b, label] = torch.maximum(heatmap[b, label], gy[:, None] * gx[None, :])
            heatmap[b, label, iy, ix] = 1.0
            log_size[b, :, iy, ix] = torch.log(torch.tensor([w, h]))
            offset[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            center_mask[b, iy, ix] = True
            referred[b, label] = 1.0
    return {"heatmap": heatmap, "log_size": log_size, "offset": offset, "center_mask": center_mask,
            "referred": referred}
