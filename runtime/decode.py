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


def class_nms(boxes: np.ndarray, labels: np.ndarray | list[int], order: Iterable[int], iou: float) -> list[int]:
    """Greedy per-class NMS: walk ``order`` (most confident first) and keep a box unless a kept box
    of the same label overlaps it by more than ``iou``. Returns the kept indices, in order."""
    order = list(order)
    if len(order) < 2:
        return order
    overlaps = box_iou_xyxy(boxes, boxes).tolist()  # one IoU matrix, not one call per box: this runs per frame
    labels = np.asarray(labels).tolist()
    kept: list[int] = []
    for i in order:
        if all(labels[k] != labels[i] or overlaps[i][k] <= iou for k in kept):
            kept.append(i)
    return kept


def _class_name(class_names: tuple[str, ...], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else f"class{label}"


def decode_outputs(outputs: dict[str, np.ndarray], letterboxes: tuple[Letterbox, ...], truncated: tuple[bool, ...],
                   class_names: tuple[str, ...], score_range: tuple[float, float],
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE, nms_iou: float = DEFAULT_NMS_IOU) -> list[Result]:
    """One Result per batch row; detections sorted by confidence (highest first).

    Plain Python lists for the few detections above ``min_confidence`` (of top-K's 20-100): this runs right
    after inference, with cold caches, where each small numpy call costs several microseconds."""
    scores = np.clip(np.asarray(outputs[SCORE], dtype=np.float64), *score_range).tolist()
    results = []
    for row, box in enumerate(letterboxes):
        confidences = outputs[CONFIDENCES][row].tolist()
        candidates = sorted((i for i, c in enumerate(confidences) if c >= min_confidence),
                            key=lambda i: -confidences[i])  # stable: ties keep the graph's order
        detections: tuple[Detection, ...] = ()
        if candidates:
            labels = np.asarray(outputs[LABELS][row])[candidates].astype(np.int64).tolist()
            boxes = boxes_to_original(np.asarray(outputs[BOXES][row], dtype=np.float32)[candidates], box)
            corners = boxes.tolist()
            detections = tuple(
                Detection(box=tuple(corners[i]), label=labels[i], class_name=_class_name(class_names, labels[i]),
                          confidence=confidences[candidates[i]])
                for i in class_nms(boxes, labels, range(len(candidates)), nms_iou))
        results.append(Result(score=scores[row], detections=detections, text_truncated=truncated[row],
                              image_size=(box.width, box.height)))
    return results
