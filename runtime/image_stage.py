"""Stage 2: RGB images -> letterboxed, normalised pixel batch, keeping each Letterbox for decode.

Uses the bundle manifest's constants (image size, mean/std, fill) rather than the package's
defaults, so a bundle exported with other constants still gets fed exactly what it was trained on.
Same arithmetic as ``edge_clipguard.preprocess`` (tested equal for the default constants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..bundle import Preprocess
from ..preprocess import Letterbox


@dataclass(frozen=True)
class ImageBatch:
    """pixel_values: float32 [batch, 3, size, size]; letterboxes[i] maps image i's boxes back."""

    pixel_values: np.ndarray
    letterboxes: tuple[Letterbox, ...]


class ImageStage:
    """Letterbox + normalise with fixed constants; pure apart from Pillow's resize."""

    def __init__(self, pre: Preprocess):
        self.size = pre.image_size
        self.fill = tuple(pre.letterbox_fill)
        self.mean = np.asarray(pre.mean, dtype=np.float32) * 255.0
        self.std = np.asarray(pre.std, dtype=np.float32) * 255.0

    def letterbox(self, image: Image.Image) -> tuple[np.ndarray, Letterbox]:
        """RGB image -> (size x size x 3 uint8, Letterbox): longer side scaled to ``size``, even grey padding."""
        width, height = image.size
        scale = self.size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        canvas = Image.new("RGB", (self.size, self.size), self.fill)
        pad_x, pad_y = (self.size - new_w) // 2, (self.size - new_h) // 2
        canvas.paste(image.resize((new_w, new_h), Image.BILINEAR), (pad_x, pad_y))
        return np.asarray(canvas), Letterbox(width, height, scale, float(pad_x), float(pad_y))

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> 3xHxW float32."""
        return ((pixels.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)

    def __call__(self, images: list[Image.Image]) -> ImageBatch:
        batch = np.empty((len(images), 3, self.size, self.size), dtype=np.float32)
        boxes = []
        for i, image in enumerate(images):
            pixels, box = self.letterbox(image)
            batch[i] = self.normalize(pixels)
            boxes.append(box)
        return ImageBatch(batch, tuple(boxes))
