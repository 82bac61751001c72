"""Typed, immutable results of ``Predictor.predict`` (plain Python values, JSON-friendly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Detection:
    """One box the text refers to.

    box: (x1, y1, x2, y2) in ORIGINAL image pixels (after EXIF orientation), clipped to the image.
    label: class index into the bundle's class names; confidence: peak heat-map value in [0, 1].
    """

    box: tuple[float, float, float, float]
    label: int
    class_name: str
    confidence: float


@dataclass(frozen=True)
class Result:
    """Prediction for one (text, image) pair.

    score: the text's 0-10 score. detections: sorted by confidence, highest first, only those at or
    above the predictor's ``min_confidence``. text_truncated: the text was longer than the model's
    token budget and was cut (the score then describes the kept prefix). image_size: (width, height).
    """

    score: float
    detections: tuple[Detection, ...]
    text_truncated: bool
    image_size: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["detections"] = [dict(d, box=list(d["box"])) for d in data["detections"]]
        data["image_size"] = list(self.image_size)
        return data
