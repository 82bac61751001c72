"""The lean runtime: load a bundle and predict, with numpy, tokenizers, Pillow and one backend.

    from edge_clipguard.runtime import Predictor
    with Predictor.load("bundle/", backend="onnxruntime", device="cpu") as predictor:
        result = predictor.predict("the red star is lovely", "photo.jpg")
        result.score, [(d.class_name, d.box, d.confidence) for d in result.detections]

Loading and predicting import no torch and none of the training, data or export packages (a test
checks it in a fresh interpreter); backends are imported only when a Predictor chooses them. The one
exception is ``profile_torch``, which ``profile --compare-torch CKPT`` imports on purpose to time
PyTorch next to the bundle.
"""

from __future__ import annotations

from .decode import DEFAULT_MIN_CONFIDENCE
from .errors import BackendError, BundleError, ClipGuardError, ImageError, InputError, IntegrityError, TextError
from .predictor import Predictor, PredictorConfig
from .results import Detection, Result
from .stream import StreamItem

__all__ = ["DEFAULT_MIN_CONFIDENCE", "BackendError", "BundleError", "ClipGuardError", "Detection", "ImageError",
           "InputError", "IntegrityError", "Predictor", "PredictorConfig", "Result", "StreamItem", "TextError"]
