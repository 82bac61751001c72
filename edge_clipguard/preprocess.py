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
    """Resize+pad an RGB PIL image to ``size`` x ``size``; returns (HxWx3 uint8, Letterbox)."""
    width, height = image.size
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = image.resize((new_w, new_h), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), tuple(fill))
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas.paste(resized, (pad_x, pad_y))
    return np.asarray(canvas), Letterbox(width, height, scale, float(pad_x), float(pad_y))


def normalize(pixels: np.ndarray, mean: Triple = IMAGE_MEAN, std: Triple = IMAGE_STD) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32: (x/255 - mean) / std per channel."""
    mean_255 = np.asarray(mean, dtype=np.float32) * 255.0
    std_255 = np.asarray(std, dtype=np.float32) * 255.0
    return np.ascontiguousarray(((pixels.astype(np.float32) - mean_255) / std_255).transpose(2, 0, 1))


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
