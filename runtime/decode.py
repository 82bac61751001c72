"""Stage 4: raw graph outputs -> typed Results (boxes back in original pixels, class names attached).

The graph already decodes boxes (peak-keep + TopK), so this stage only maps coordinates through
each image's Letterbox, clips the score to the manifest's range, drops detections below
``min_confidence`` and, per class, boxes that overlap a more confident box by more than
``nms_iou`` (the graph's 3x3 peak keep leaves neighbouring peaks of one object; 1.0 keeps them).
Pure functions: no state, easy to test.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..boxes import box_iou_xyxy
from ..contract import BOXES, CONFIDENCES, LABELS, SCORE
from ..preprocess import Letterbox, boxes_to_original
from .results import Detection, Result

DEFAULT_MIN_CONFIDENCE = 0.25  # Ultralytics' predict default; the graph keeps top-K peaks down to ~0
DEFAULT_NMS_IOU = 0.7  # Ultralytics' default IoU threshold


def class_nms(boxes: np.ndarray, labels: np.ndarray, order: Iterable[int], iou: float) -> list[int]:
    """Greedy per-class NMS: walk ``order`` (most confident first) and keep a box unless a kept box
    of the same label overlaps it by more than ``iou``. Returns the kept indices, in order."""
    kept: list[int] = []
    for i in order:
        same = [k for k in kept if labels[k] == labels[i]]
        if not same or box_iou_xyxy(boxes[i], boxes[same]).max() <= iou:
            kept.append(i)
    return kept


def decode_outputs(outputs: dict[str, np.ndarray], letterboxes: tuple[Letterbox, ...], truncated: tuple[bool, ...],
                   class_names: tuple[str, ...], score_range: tuple[float, float],
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE, nms_iou: float = DEFAULT_NMS_IOU) -> list[Result]:
    """One Result per batch row; detections sorted by confidence (highest first)."""
    scores = np.clip(np.asarray(outputs[SCORE], dtype=np.float64), *score_range)
    results = []
    for row, box in enumerate(letterboxes):
        confidences = np.asarray(outputs[CONFIDENCES][row], dtype=np.float64)
        # Only the detections above the threshold are ordered, mapped and NMS-ed (a few of top-K's 20-100):
        # fewer numpy calls on the path that runs right after inference, when caches are cold.
        candidates = np.flatnonzero(confidences >= min_confidence)
        candidates = candidates[np.argsort(-confidences[candidates], kind="stable")]
        labels = np.asarray(outputs[LABELS][row])[candidates].astype(np.int64)
        boxes = boxes_to_original(np.asarray(outputs[BOXES][row], dtype=np.float32)[candidates], box)
        keep = class_nms(boxes, labels, range(len(candidates)), nms_iou)
        detections = tuple(
            Detection(box=tuple(float(v) for v in boxes[i]), label=int(labels[i]),
                      class_name=class_names[labels[i]] if 0 <= labels[i] < len(class_names) else f"class{labels[i]}",
                      confidence=float(confidences[candidates[i]]))
            for i in keep)
        results.append(Result(score=float(scores[row]), detections=detections, text_truncated=truncated[row],
                              image_size=(box.width, box.height)))
    return results
