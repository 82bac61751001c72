"""The lean runtime: load a bundle and predict, with numpy, tokenizers, Pillow and one backend.

    from edge_clipguard.runtime import Predictor
    with Predictor.load("bundle/", backend="onnxruntime", device="cpu") as predictor:
        result = predictor.predict("the red star is lovely", "photo.jpg")
        result.score, [(d.class_name, d.box, d.confidence) for d in result.detections]

The runtime imports no torch and none of the training, model, data or export packages (import-linter
contracts and a fresh-interpreter test check it); backends are imported only when a Predictor chooses
them. ``profile --compare-torch CKPT`` loads the training stack's ``edge_clipguard.train.profile_torch``
by name, on purpose, to time PyTorch next to the bundle.
"""

from __future__ import annotations

from .decode import DEFAULT_MIN_CONFIDENCE
from .errors import BackendError, BundleError, ClipGuardError, ImageError, InputError, IntegrityError, TextError
from .predictor import Predictor, PredictorConfig
from .results import Detection, Result
from .stream import StreamItem

__all__ = ["DEFAULT_MIN_CONFIDENCE", "BackendError", "BundleError", "ClipGuardError", "Detection", "ImageError",
           "InputError", "IntegrityError", "Predictor", "PredictorConfig", "Result", "StreamItem", "TextError"]
