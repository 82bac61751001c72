"""Image preprocessing shared by training and the runtime (numpy, OpenCV/Pillow for the resize; no torch).

Letterbox: keep the aspect ratio, scale the longer side to ``size``, pad the rest evenly with
``fill``. Boxes move between original pixels and letterboxed-input pixels with the same record.
The constants default to the package's (``contract``); the runtime passes the bundle manifest's
(size, mean/std, fill and the resize method the model was trained with), so training and the device
run the very same functions on the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .contract import DEFAULT_RESIZE, IMAGE_MEAN, IMAGE_STD, LETTERBOX_FILL
from .image_io import ORIGINAL_SIZE
from .resize import resize_into

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class Letterbox:
    """How an original image of ``width`` x ``height`` maps onto the square input."""

    width: int
    height: int
    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: Image.Image | np.ndarray, size: int, fill: tuple[int, int, int] = LETTERBOX_FILL,
              out: np.ndarray | None = None, resize: str = DEFAULT_RESIZE,
              full_size: tuple[int, int] | None = None) -> tuple[np.ndarray, Letterbox]:
    """Resize+pad an RGB image (PIL, or H x W x 3 uint8) to ``size`` x ``size`` with the ``resize`` method;
    returns (HxWx3 uint8, written into ``out`` when given, Letterbox). The Letterbox maps the image's
    full-size pixels (``full_size``, or a PIL image's ``ORIGINAL_SIZE``) when it was decoded at reduced scale."""
    if isinstance(image, np.ndarray):
        decoded = (image.shape[1], image.shape[0])
    else:
        decoded = image.size
        full_size = full_size or image.info.get(ORIGINAL_SIZE)
    width, height = full_size or decoded
    scale = size / max(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.empty((size, size, 3), dtype=np.uint8) if out is None else out
    fill_border(canvas, (pad_x, pad_y, new_w, new_h), fill)
    inside = canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w]
    if (new_w, new_h) == decoded:
        inside[...] = np.asarray(image)
    else:
        resize_into(image, inside, resize)
    return canvas, Letterbox(width, height, scale, float(pad_x), float(pad_y))


def fill_border(canvas: np.ndarray, inner: tuple[int, int, int, int], fill: tuple[int, int, int]) -> None:
    """Paint ``fill`` on the canvas outside the ``inner`` (x, y, w, h) rectangle only: filling the whole
    canvas first cost ~0.3 ms per 320 px image, more than anything in the letterbox but the resize.
    The colour is copied from one row of pixels, not broadcast from 3 values: numpy then copies whole
    rows (~8 us) instead of looping over 3-byte pixels (~150 us)."""
    x, y, w, h = inner
    row = np.empty((canvas.shape[1], 3), dtype=np.uint8)
    row[:] = fill
    canvas[:y] = row
    canvas[y + h:] = row
    canvas[y:y + h, :x] = row[:x]
    canvas[y:y + h, x + w:] = row[x + w:]


def normalize(pixels: np.ndarray, mean: Triple = IMAGE_MEAN, std: Triple = IMAGE_STD,
              out: np.ndarray | None = None) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32: (x - 255·mean) / (255·std) per channel, written into ``out`` when given
    (a batch row: no extra copy) or a new array."""
    chw = pixels.transpose(2, 0, 1)
    if out is None:
        out = np.empty(chw.shape, dtype=np.float32)
    np.subtract(chw, (np.asarray(mean, dtype=np.float32) * 255.0)[:, None, None], out=out)
    np.divide(out, (np.asarray(std, dtype=np.float32) * 255.0)[:, None, None], out=out)
    return out


def preprocess_image(image: Image.Image | np.ndarray, size: int, mean: Triple = IMAGE_MEAN, std: Triple = IMAGE_STD,
                     fill: tuple[int, int, int] = LETTERBOX_FILL, out: np.ndarray | None = None,
                     resize: str = DEFAULT_RESIZE,
                     full_size: tuple[int, int] | None = None) -> tuple[np.ndarray, Letterbox]:
    """RGB image (PIL, or H x W x 3 uint8) -> (3 x size x size float32, Letterbox); into ``out`` when given."""
    pixels, box = letterbox(image, size, fill, resize=resize, full_size=full_size)
    return normalize(pixels, mean, std, out), box


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


def box_to_original(box: Sequence[float], lb: Letterbox) -> tuple[float, float, float, float]:
    """``boxes_to_original`` for one box in plain Python floats (the runtime's decode, on a few boxes right
    after an inference, where numpy calls on cold caches cost more than the arithmetic)."""
    x1, y1, x2, y2 = box
    return (min(max((x1 - lb.pad_x) / lb.scale, 0.0), lb.width), min(max((y1 - lb.pad_y) / lb.scale, 0.0), lb.height),
            min(max((x2 - lb.pad_x) / lb.scale, 0.0), lb.width), min(max((y2 - lb.pad_y) / lb.scale, 0.0), lb.height))
