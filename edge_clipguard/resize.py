"""The letterbox's resize: one function, two methods, chosen by what the model was trained with.

Why OpenCV: on the fastest CPU path (OpenVINO INT8, ~10-13 ms per base inference) Pillow's resize of a
320 px scene was the largest piece of runtime overhead (0.8-1.0 ms right after an inference, scalar C;
two threads on row bands did not help once the inference had cooled the caches). ``cv2.resize`` does
the same scene in ~0.12 ms with SIMD, and a 1080p frame in ~2.3 ms (Pillow: 7 ms).

- ``"opencv"``: bilinear (``INTER_LINEAR``) when the image shrinks by at most 2x or grows; pixel-area
  averaging (``INTER_AREA``) when it shrinks more, where 2-tap bilinear would alias (video frames; a
  JPEG photo is already decoded at reduced scale to within 2x of the input side). Its bilinear does
  not antialias a 0.5-1x shrink the way Pillow's does: on real scenes it differs from Pillow by ~2 grey
  levels on average (up to ~40 at sharp edges), which is why the method is recorded with the model. Its
  8-bit bilinear is fixed-point; builds with and without Intel IPP agree to within 1 grey level.
- ``"pillow-bilinear"``: ``Image.resize(..., BILINEAR)`` (antialiased triangle filter), kept so models
  trained before the switch are fed the pixels they learned from.

OpenCV is optional (the ``opencv`` extra; ``[train]`` has it through albumentations): it is 173 MB of the
device install, for this one call. Without it, ``"opencv"`` is computed by Pillow with the same sampling
geometry -- an affine transform with 2-tap bilinear sampling at OpenCV's half-pixel centres, and Pillow's
box filter for the pixel-area case -- which agrees with ``cv2.resize`` to within 1 grey level (rounding of
OpenCV's fixed-point weights; tested) but is ~8-15x slower (~1.5-2.5 ms for a 320 px scene).

Training (``data.dataset``) and the runtime (``runtime.image_stage``) both call ``resize_into`` with the
method from the model config / bundle manifest.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from .contract import RESIZE_METHODS, RESIZE_OPENCV, RESIZE_PILLOW

# Shrinking by more than this uses pixel-area averaging under "opencv".
AREA_BELOW_SCALE = 0.5


@functools.cache
def opencv_available() -> bool:
    """Whether ``cv2`` imports here (then ``"opencv"`` is OpenCV's own SIMD resize, else the Pillow twin)."""
    try:
        import cv2  # noqa: F401  (optional; imported lazily so `import edge_clipguard` stays light)
    except ImportError:
        return False
    return True


def _pillow_opencv_into(pixels: np.ndarray, out: np.ndarray, shrinks_a_lot: bool) -> None:
    """``cv2.resize``'s pixels (to within 1 grey level) from Pillow, for installs without OpenCV.

    Bilinear: output pixel centre x+0.5 maps to source x' = (x+0.5)*w/w' and Pillow's affine BILINEAR samples
    at x'-0.5 without antialiasing, which is OpenCV's INTER_LINEAR geometry (edges clamp in both). Area: Pillow's
    BOX filter weights each source pixel by its overlap with the output pixel, which is INTER_AREA."""
    out_h, out_w = out.shape[:2]
    image = Image.fromarray(pixels)
    if shrinks_a_lot:
        resized = image.resize((out_w, out_h), Image.BOX)
    else:
        sx, sy = pixels.shape[1] / out_w, pixels.shape[0] / out_h
        resized = image.transform((out_w, out_h), Image.AFFINE, (sx, 0, 0, 0, sy, 0), resample=Image.BILINEAR)
    out[...] = np.asarray(resized)


def _opencv_into(pixels: np.ndarray, out: np.ndarray) -> None:
    out_h, out_w = out.shape[:2]
    scale = min(out_w / pixels.shape[1], out_h / pixels.shape[0])
    if not opencv_available():
        _pillow_opencv_into(pixels, out, scale < AREA_BELOW_SCALE)
        return
    import cv2

    interpolation = cv2.INTER_AREA if scale < AREA_BELOW_SCALE else cv2.INTER_LINEAR
    result = cv2.resize(pixels, (out_w, out_h), dst=out, interpolation=interpolation)
    if result is not out and not np.shares_memory(result, out):  # OpenCV refused the view as dst: copy
        out[...] = result


def resize_into(image: Image.Image | np.ndarray, out: np.ndarray, method: str = RESIZE_OPENCV) -> None:
    """Resize an RGB image (PIL, or H x W x 3 uint8) into ``out`` (H' x W' x 3 uint8, a view is fine)."""
    if method == RESIZE_OPENCV:
        pixels = image if isinstance(image, np.ndarray) else np.asarray(image)
        _opencv_into(np.ascontiguousarray(pixels), out)
    elif method == RESIZE_PILLOW:
        pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
        out[...] = np.asarray(pil.resize((out.shape[1], out.shape[0]), Image.BILINEAR))
    else:  # configs and manifests are checked when read; this is a caller's own typo
        raise ValueError(f"resize method must be one of {list(RESIZE_METHODS)}, got {method!r}")
