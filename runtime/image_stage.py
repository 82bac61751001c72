"""Stage 2: RGB images -> letterboxed, normalised pixel batch, keeping each Letterbox for decode.

Runs ``edge_clipguard.preprocess`` (the functions training uses) with the bundle manifest's constants
(image size, mean/std, fill, resize method) rather than the package's defaults, so a bundle exported with other
constants still gets fed exactly what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bundle import Preprocess
from ..image_io import RgbPixels
from ..preprocess import Letterbox, letterbox, preprocess_image


@dataclass(frozen=True)
class ImageBatch:
    """pixel_values: float32 [batch, 3, size, size], normalised (what the graph takes), or, for a runner that
    normalises in its compiled model (``Runner.takes_uint8_pixels``), the uint8 [batch, size, size, 3]
    letterboxed canvases; letterboxes[i] maps image i's boxes back."""

    pixel_values: np.ndarray
    letterboxes: tuple[Letterbox, ...]


class ImageStage:
    """Letterbox (+ normalise, unless the runner does it) with the manifest's constants."""

    def __init__(self, pre: Preprocess, normalize: bool = True):
        self.pre = pre
        self.normalize = normalize

    def __call__(self, images: list[RgbPixels]) -> ImageBatch:
        pre = self.pre
        size = pre.image_size
        boxes = []
        if not self.normalize:
            canvases = np.empty((len(images), size, size, 3), dtype=np.uint8)
            for i, image in enumerate(images):
                boxes.append(letterbox(image.array, size, pre.letterbox_fill, out=canvases[i], resize=pre.resize,
                                       full_size=image.full_size)[1])
            return ImageBatch(canvases, tuple(boxes))
        batch = np.empty((len(images), 3, size, size), dtype=np.float32)
        for i, image in enumerate(images):
            _, box = preprocess_image(image.array, size, pre.mean, pre.std, pre.letterbox_fill, out=batch[i],
                                      resize=pre.resize, full_size=image.full_size)
            boxes.append(box)
        return ImageBatch(batch, tuple(boxes))
