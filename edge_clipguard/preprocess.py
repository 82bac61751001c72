"""Image preprocessing shared by training and the runtime (numpy + Pillow, no torch).

Letterbox: keep the aspect ratio, scale the longer side to ``size``, pad the rest evenly with
``fill``. Boxes move between original pixels and letterboxed-input pixels with the same record.
The constants default to the package's (``contract``); the runtime passes the bundle manifest's,
so training and the device run the very same functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .contract import IMAGE_MEAN, IMAGE_STD, LETTERBOX_FILL
from .image_io import ORIGINAL_SIZE

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Letterbox:
    """How an original image of ``width`` x ``height`` maps onto the square input."""

    width: int
    height: int
    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: Image.Image, size: int,
              fill: tuple[int, int, int] = LETTERBOX_FILL) -> tuple[np.ndarray, Letterbox]:
    """Resize+pad an RGB PIL image to ``size`` x ``size``; returns (HxWx3 uint8, Letterbox). The Letterbox
    maps the image's full-size pixels even when it was decoded at reduced scale (``ORIGINAL_SIZE``)."""
    width, height = image.info.get(ORIGINAL_SIZE, image.size)
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = image if (new_w, new_h) == image.size else image.resize((new_w, new_h), Image.BILINEAR)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[...] = np.asarray(fill, dtype=np.uint8)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = np.asarray(resized)
    return canvas, Letterbox(width, height, scale, float(pad_x), float(pad_y))


def normalize(pixels: np.ndarray, mean: Triple = IMAGE_MEAN, std: Triple = IMAGE_STD) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32: (x - 255·mean) / (255·std) per channel (one copy, then in place)."""
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    chw -= (np.asarray(mean, dtype=np.float32) * 255.0)[:, None, None]
    chw /= (np.asarray(std, dtype=np.float32) * 255.0)[:, None, None]
    return chw


def preprocess_image(image: Image.Image, size: int, mean: Triple = IMAGE_MEAN, std: Triple = IMAGE_STD,
                     fill: tuple[int, int, int] = LETTERBOX_FILL) -> tuple[np.ndarray, Letterbox]:
    """RGB PIL image -> (3 x size x size float32, Letterbox)."""
    pixels, box = letterbox(image, size, fill)
    return normalize(pixels, mean, std), box


def boxes_to_input(boxes_xyxy: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Original-pixel x1,y1,x2,y2 boxes [N,4] -> letterboxed-input pixels."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    offset = np.asarray([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], dtype=np.float32)
    return boxes * lb.scale + offset


def boxes_to_original(boxes_xyxy: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Letterboxed-input x1,y1,x2,y2 boxes [..., 4] -> original pixels, clipped to the image."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32)
    offset = np.asarray([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], dtype=np.float32)
    out = (boxes - offset) / lb.scale
    limits = np.asarray([lb.width, lb.height, lb.width, lb.height], dtype=np.float32)
    return np.clip(out, 0.0, limits)
