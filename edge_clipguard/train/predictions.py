"""What a model predicted for a list of manifest rows: the one shape every scorer takes (evaluate, intervals,
bundle_eval, export's accuracy column), kept apart so none of them imports another to get it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Predictions:
    """One entry per dataset row, in order. detections[i] = (boxes [K,4], confidences [K], labels [K]);
    truth[i] = (boxes [N,4], labels [N], has_image); boxes in letterboxed-input pixels (PyTorch evaluation) or
    in original pixels (bundle_eval), the truth and the detections always in the same ones."""

    scores: np.ndarray
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    truth: list[tuple[np.ndarray, np.ndarray, bool]]
