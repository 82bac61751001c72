"""Box IoU (no torch), in training, data and runtime: ``box_iou_xyxy`` for arrays of boxes, ``box_iou`` for
one pair in plain Python floats (the runtime's NMS over a few boxes right after an inference, where numpy
calls on cold caches cost more than the arithmetic). Both follow the same rule.

Box format everywhere: x1, y1, x2, y2 in pixels (absolute corners).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [N, M] of boxes a [N, 4] and b [M, 4]; degenerate boxes have zero area (IoU 0)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes as plain floats; degenerate boxes have zero area (IoU 0), like ``box_iou_xyxy``."""
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
