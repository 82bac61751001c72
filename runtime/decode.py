"""Stage 4: raw graph outputs -> typed Results (boxes back in original pixels, class names attached).

The graph already decodes boxes (peak-keep + TopK), so this stage only maps coordinates through
each image's Letterbox, clips the score to the manifest's range and drops detections below
``min_confidence``. Pure function: no state, easy to test.
"""

from __future__ import annotations

import numpy as np

from ..contract import BOXES, CONFIDENCES, LABELS, SCORE
from ..preprocess import Letterbox, boxes_to_original
from .results import Detection, Result

DEFAULT_MIN_CONFIDENCE = 0.05


def decode_outputs(outputs: dict[str, np.ndarray], letterboxes: tuple[Letterbox, ...], truncated: tuple[bool, ...],
                   class_names: tuple[str, ...], score_range: tuple[float, float],
                   min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[Result]:
    """One Result per batch row; detections sorted by confidence (highest first)."""
    scores = np.clip(np.asarray(outputs[SCORE], dtype=np.float64), *score_range)
    results = []
    for row, box in enumerate(letterboxes):
        confidences = np.asarray(outputs[CONFIDENCES][row], dtype=np.float64)
        labels = np.asarray(outputs[LABELS][row]).astype(np.int64)
        boxes = boxes_to_original(np.asarray(outputs[BOXES][row], dtype=np.float32), box)
        keep = [int(i) for i in np.argsort(-confidences, kind="stable") if confidences[i] >= min_confidence]
        detections = tuple(
            Detection(box=tuple(float(v) for v in boxes[i]), label=int(labels[i]),
                      class_name=class_names[labels[i]] if 0 <= labels[i] < len(class_names) else f"class{labels[i]}",
                      confidence=float(confidences[i]))
            for i in keep)
        results.append(Result(score=float(scores[row]), detections=detections, text_truncated=truncated[row],
                              image_size=(box.width, box.height)))
    return results
