"""Turn whatever the caller hands us (path, PIL image, HxWx3 uint8 array) into an 8-bit RGB PIL image.

The one image reader of the package (numpy + Pillow, no torch): training, evaluation, calibration and
the runtime all read images here, so an EXIF-rotated, transparent or 16-bit photo looks the same to the
model in training as on the device. Why a module of its own: this is where untrusted input arrives.
It refuses empty, corrupt and oversized files with an ImageError (one line), guards against
decompression bombs with our own pixel limit, and converts the modes Pillow reads from real files
(L, LA, P, RGBA, CMYK, 16-bit I;16 and 32-bit I, float F) to RGB with the right scaling:
``convert("L")`` would clip 16-bit values instead of scaling them.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .contract import LETTERBOX_FILL
from .errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000  # ~ 8660 x 5770; PIL's own bomb warning starts at ~89 M pixels

# ``image.info`` key of a reduced-scale decode: the (width, height) of the full image, EXIF-oriented.
# Boxes (targets in training, detections at run time) live in those pixels, so the letterbox maps them
# with this size rather than the decoded one (``preprocess.letterbox`` reads it).
ORIGINAL_SIZE = "edge_clipguard.original_size"

# Pillow's bomb check warns through the global warnings filter; the lock keeps our temporary
# "warning -> error" filter from interleaving between threads of this process.
_OPEN_LOCK = threading.Lock()


def _check_pixels(width: int, height: int, max_pixels: int, where: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(f"{where}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"{where}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels} "
                         "(decompression-bomb guard; raise max_image_pixels if this image is genuine)")


def _scale_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """Integer/float single-channel pixels -> uint8: 16-bit ranges are divided by 257, floats clipped."""
    if mode == "F":
        return np.clip(np.rint(array), 0, 255).astype(np.uint8)
    # "I;16*" is unsigned 16-bit; Pillow also opens 16-bit PNGs as 32-bit "I" holding 0..65535.
    return np.rint(np.clip(array.astype(np.float64), 0, 65535) / 257.0).astype(np.uint8)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = LETTERBOX_FILL) -> Image.Image:
    """8-bit RGB copy of ``image``. Transparent pixels are composited onto ``background``."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        gray = _scale_to_uint8(np.asarray(image), mode)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def _from_array(array: np.ndarray, where: str, max_pixels: int) -> Image.Image:
    if array.dtype != np.uint8:
        raise ImageError(f"{where}: array dtype is {array.dtype}, expected uint8 (HxWx3 RGB)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageError(f"{where}: array shape is {array.shape}, expected HxWx3 (RGB), HxWx4 (RGBA) or HxW (gray)")
    _check_pixels(array.shape[1], array.shape[0], max_pixels, where)
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(array), mode=mode)


def draft_size(width: int, height: int, target: int) -> tuple[int, int]:
    """The smallest (w, h) a reduced-scale decode may return so the longer side still reaches ``target``."""
    scale = target / max(width, height)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _decode(opened: Image.Image, where: str, max_pixels: int, target_size: int | None) -> Image.Image:
    """Check the size, decode (a JPEG at reduced scale when ``target_size`` allows), apply EXIF orientation.

    A JPEG is returned itself, not a copy: ``load()`` has already closed its file, and closing the image
    would drop its pixels, so keeping them meant a copy plus ``exif_transpose``'s own copy (0.3 of the
    0.7 ms a 320 px scene took). Formats whose file stays open after ``load()`` are copied and closed."""
    image = opened
    try:
        _check_pixels(image.width, image.height, max_pixels, where)
        full = image.size
        if target_size and image.format == "JPEG" and max(image.size) >= 2 * target_size:
            # libjpeg's DCT scaling decodes 1/2, 1/4 or 1/8 of the pixels straight away: a 12 MP photo
            # costs about what a 1.5 MP one does. draft() keeps both sides >= the size asked for.
            image.draft(image.mode, draft_size(image.width, image.height, target_size))
        image.load()
    except BaseException:
        image.close()
        raise
    if getattr(image, "fp", None) is not None or getattr(image, "_fp", None) is not None:
        kept = image.copy()  # PNG, GIF, TIFF, MPO keep their file open (to seek frames): copy, then close it
        image.close()
        image = kept
    decoded = image.size
    ImageOps.exif_transpose(image, in_place=True)
    if decoded != full:  # reduced scale: remember the full size, turned as EXIF turned the pixels
        image.info[ORIGINAL_SIZE] = full if image.size == decoded else full[::-1]
    return image


def _from_file(source: Path | io.BytesIO, where: str, max_pixels: int, target_size: int | None) -> Image.Image:
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Pillow's warning becomes our refusal, unless the caller allowed more pixels than Pillow does
            # (then _check_pixels applies the caller's limit).
            above_pillow = Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS
            warnings.simplefilter("ignore" if above_pillow else "error", Image.DecompressionBombWarning)
            opened = Image.open(source)
        return _decode(opened, where, max_pixels, target_size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{where}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{where}: not an image Pillow can read (corrupt or unknown format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated/corrupt data surfaces as these
        raise ImageError(f"{where}: corrupt image data ({type(exc).__name__}: {exc})") from None


def _from_path(path: Path, where: str, max_pixels: int, target_size: int | None) -> Image.Image:
    if not path.is_file():
        raise ImageError(f"{where}: no such image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{where}: file is empty (0 bytes)")
    return _from_file(path, where, max_pixels, target_size)


def load_image(source: object, index: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
               background: tuple[int, int, int] = LETTERBOX_FILL, target_size: int | None = None) -> Image.Image:
    """8-bit RGB PIL image from a path, encoded file bytes, a PIL image or a uint8 array; raises ImageError
    with one line. ``target_size``: the model's input side; a large JPEG is then decoded at reduced scale
    (never below that side), which is what the letterbox would shrink it to anyway."""
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        image = _from_path(Path(source), where, max_pixels, target_size)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        where = f"image #{index}"
        if not len(source):
            raise ImageError(f"{where}: image bytes are empty")
        image = _from_file(io.BytesIO(bytes(source)), where, max_pixels, target_size)
    elif isinstance(source, Image.Image):
        where = f"image #{index}"
        _check_pixels(source.width, source.height, max_pixels, where)
        image = source
    elif isinstance(source, np.ndarray):
        where = f"image #{index}"
        image = _from_array(source, where, max_pixels)
    else:
        raise ImageError(f"image #{index}: expected a path, encoded image bytes, PIL image or HxWx3 uint8 array, "
                         f"got {type(source).__name__}")
    try:
        rgb = to_rgb(image, background)
        if ORIGINAL_SIZE in image.info:
            rgb.info[ORIGINAL_SIZE] = image.info[ORIGINAL_SIZE]
        return rgb
    except (OSError, ValueError) as exc:
        raise ImageError(f"{where}: cannot convert mode {image.mode!r} to RGB ({exc})") from None
