"""Stage 2: RGB images -> letterboxed, normalised pixel batch, keeping each Letterbox for decode.

Runs ``edge_clipguard.preprocess`` (the functions training uses) with the bundle manifest's constants
(image size, mean/std, fill) rather than the package's defaults, so a bundle exported with other
constants still gets fed exactly what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..bundle import Preprocess
from ..preprocess import Letterbox, preprocess_image


@dataclass(frozen=True)
class ImageBatch:
    """pixel_values: float32 [batch, 3, size, size]; letterboxes[i] maps image i's boxes back."""

    pixel_values: np.ndarray
    letterboxes: tuple[Letterbox, ...]


class ImageStage:
    """Letterbox + normalise with the manifest's constants; pure apart from Pillow's resize."""

    def __init__(self, pre: Preprocess):
        self.pre = pre

    def __call__(self, images: list[Image.Image]) -> ImageBatch:
        pre = self.pre
        batch = np.empty((len(images), 3, pre.image_size, pre.image_size), dtype=np.float32)
        boxes = []
        for i, image in enumerate(images):
            _, box = preprocess_image(image, pre.image_size, pre.mean, pre.std, pre.letterbox_fill, out=batch[i])
            boxes.append(box)
        return ImageBatch(batch, tuple(boxes))
