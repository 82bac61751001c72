"""Scoring a bundle the way a device runs it: the runtime's ``Predictor`` over labelled manifest rows.

Export's accuracy column and ``evaluate BUNDLE`` use this, so the numbers come from the code that ships: the
runtime's image path (decode, letterbox with the model's resize), its backend runner and its decode (boxes mapped
back to the original pixels). Every top-K detection is kept (``min_confidence=0``, no NMS), as mAP wants. The
PyTorch reference of an export runs through the same stages with PyTorch as the ``infer`` stage, so only the
engine differs. A text-only row (no image) is fed a blank mid-grey image, as training feeds it zeros.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.manifest import Sample
from ..runtime.opened_bundle import OpenedBundle, open_bundle
from ..runtime.predictor import Predictor, PredictorConfig
from .predictions import Predictions

BATCH = 8


def opened(bundle_dir: str | Path, manifest) -> OpenedBundle:
    """A bundle folder with a manifest held in memory (export's, before it writes manifest.json)."""
    return OpenedBundle(Path(bundle_dir), manifest)


def open_predictor(bundle: OpenedBundle | str | Path, backend: str = "auto", device: str = "cpu",
                   precision: str | None = None, artifact: str | None = None, threads: int | None = None,
                   whole_graph: bool = False) -> Predictor:
    """A Predictor that keeps every top-K detection (what mAP is computed from). ``whole_graph``: run a cut
    bundle's whole graph, encoding the text on every call (latency comparable across bundles with and without
    parts)."""
    feature_cache = {"text_feature_cache_bytes": 0} if whole_graph else {}
    config = PredictorConfig(backend=backend, device=device, precision=precision, artifact=artifact, threads=threads,
                             min_confidence=0.0, nms_iou=1.0, text_cache_size=0, compile_cache=False, **feature_cache)
    opened = bundle if isinstance(bundle, OpenedBundle) else open_bundle(bundle)
    return Predictor.from_opened(opened, config)


def predict_rows(predictor: Predictor, rows: list[Sample], infer=None, batch_size: int = BATCH) -> Predictions:
    """Run ``rows`` through the predictor's stages (``infer`` replaces its backend, e.g. PyTorch), in order."""
    size = predictor.manifest.preprocess.image_size
    blank = np.full((size, size, 3), 128, dtype=np.uint8)
    pixels_stage = predictor.graph_pixels if infer is not None else predictor.preprocess
    scores, detections, truth = [], [], []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        tokens = predictor.tokenize([row.text for row in chunk])
        pixels = pixels_stage([row.image if row.image is not None else blank for row in chunk])
        outputs = (infer or predictor.infer)(tokens, pixels)
        for row, result in zip(chunk, predictor.decode(outputs, tokens, pixels)):
            scores.append(result.score)
            dets = result.detections
            detections.append((np.asarray([d.box for d in dets], dtype=np.float64).reshape(-1, 4),
                               np.asarray([d.confidence for d in dets], dtype=np.float64),
                               np.asarray([d.label for d in dets], dtype=np.int64)))
            truth.append((np.asarray(row.boxes, dtype=np.float64).reshape(-1, 4),
                          np.asarray(row.labels, dtype=np.int64), row.image is not None))
    return Predictions(np.asarray(scores, dtype=np.float64), detections, truth)


def torch_stage(model):
    """A PyTorch model (fp32 or fake-quant) as the ``infer`` stage of a predictor's pipeline, on the CPU."""
    from ..model.clipguard import DecodedClipGuard
    from .profile_torch import torch_infer_stage

    return torch_infer_stage(DecodedClipGuard(model).eval(), "cpu")


def evaluate_bundle(bundle: str | Path, manifests: tuple[str, ...], backend: str = "auto", precision: str | None = None,
                    threads: int | None = None) -> dict:
    """``evaluate BUNDLE``: score metrics per domain, mAP and their 95 % bootstrap intervals of one artifact of a
    bundle, run by the runtime on the rows of ``manifests``."""
    from .evaluate import score_predictions
    from .intervals import metric_intervals
    from .run import read_manifests

    with open_predictor(bundle, backend, precision=precision, threads=threads) as predictor:
        num_classes = len(predictor.manifest.class_names)
        samples = read_manifests(manifests, num_classes)
        pred = predict_rows(predictor, samples)
        result = score_predictions(pred, samples, num_classes)
        result["artifact"] = predictor.describe()
    truth = np.asarray([np.nan if s.score is None else s.score for s in samples], dtype=np.float64)
    result["ci95"] = metric_intervals(pred, truth, num_classes)
    return result
