"""Turn whatever the caller hands us (path, bytes, PIL image, HxWx3 uint8 array) into 8-bit RGB pixels.

``load_pixels`` gives an H x W x 3 uint8 array (what the letterbox takes; an RGB array passes through
without a copy), ``load_image`` the same pixels as a PIL image. JPEGs go through ``jpeg`` (libjpeg-turbo
straight to an array, the same pixels as Pillow's decode), everything else through Pillow.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import jpeg
from .contract import LETTERBOX_FILL
from .errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000  # ~ 8660 x 5770; PIL's own bomb warning starts at ~89 M pixels

# ``image.info`` key of a reduced-scale decode: the (width, height) of the full image, EXIF-oriented.
# Boxes (targets in training, detections at run time) live in those pixels, so the letterbox maps them
# with this size rather than the decoded one (``preprocess.letterbox`` reads it).
ORIGINAL_SIZE = "edge_clipguard.original_size"

# A file larger than any image within the pixel limit could be (uncompressed 32-bit float RGBA, plus 1 MB of
# headers and metadata) is refused before it is read: pointing the loader at a video must not fill the memory.
MAX_FILE_BYTES_PER_PIXEL = 16


@dataclass(frozen=True)
class RgbPixels:
    """A loaded image: ``array`` H x W x 3 uint8 RGB (C-contiguous), and ``full_size``, the (width, height)
    of the whole image, EXIF-oriented; the two differ after a reduced-scale decode."""

    array: np.ndarray
    full_size: tuple[int, int]

    @property
    def reduced(self) -> bool:
        return self.full_size != (self.array.shape[1], self.array.shape[0])


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


def _array_rgb(array: np.ndarray, where: str, max_pixels: int, background: tuple[int, int, int]) -> np.ndarray:
    """A caller's uint8 array as H x W x 3 RGB; an RGB array comes back as it is (no copy when contiguous)."""
    if array.dtype != np.uint8:
        raise ImageError(f"{where}: array dtype is {array.dtype}, expected uint8 (HxWx3 RGB)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ImageError(f"{where}: array shape is {array.shape}, expected HxWx3 (RGB), HxWx4 (RGBA) or HxW (gray)")
    _check_pixels(array.shape[1], array.shape[0], max_pixels, where)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    mode = "L" if array.ndim == 2 else "RGBA"
    return np.asarray(to_rgb(Image.fromarray(np.ascontiguousarray(array), mode=mode), background))


EXIF_ORIENTATION_TAG = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # the EXIF orientations that swap width and height


def _draft_scale(width: int, height: int, target_size: int | None) -> int:
    """The DCT scale denominator (1, 2, 4, 8) a reduced-scale decode uses: Pillow's ``draft`` rule for the size
    ``draft_size`` asks, so the fast JPEG path and Pillow decode the same pixels."""
    if not target_size or max(width, height) < 2 * target_size:
        return 1
    asked_w, asked_h = draft_size(width, height, target_size)
    scale = min(width // asked_w, height // asked_h)
    return next(s for s in (8, 4, 2, 1) if scale >= s)


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
    turns = image.getexif().get(EXIF_ORIENTATION_TAG, 1) in TRANSPOSING_ORIENTATIONS
    ImageOps.exif_transpose(image, in_place=True)
    if decoded != full:  # reduced scale: remember the full size, turned as EXIF turned the pixels (decided by the
        # tag, not by comparing sizes: a square reduced decode of a non-square photo looks the same either way)
        image.info[ORIGINAL_SIZE] = full[::-1] if turns else full
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


def _read_path(path: Path, where: str, max_pixels: int) -> bytes:
    limit = max_pixels * MAX_FILE_BYTES_PER_PIXEL + (1 << 20)
    try:  # no separate exists/is_file check: one system call less on the path every prediction takes
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise ImageError(f"{where}: file is {size} bytes, more than an image within the pixel limit of "
                                 f"{max_pixels} can take ({limit}); not an image, or raise max_image_pixels")
            data = file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ImageError(f"{where}: no such image file") from None
    except OSError as exc:
        raise ImageError(f"{where}: cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if not data:
        raise ImageError(f"{where}: file is empty (0 bytes)")
    return data


def _fast_jpeg(data: bytes, where: str, max_pixels: int, target_size: int | None) -> RgbPixels | None:
    """A JPEG decoded by ``jpeg`` (the same pixels as Pillow, faster), or None to let Pillow do it."""
    size = jpeg.jpeg_size(data)
    if size is None:
        return None
    _check_pixels(*size, max_pixels, where)
    orientation = jpeg.exif_orientation(data)
    if orientation is None:
        return None
    pixels = jpeg.decode_rgb(data, size, _draft_scale(*size, target_size))
    if pixels is None:
        return None
    full = size[::-1] if orientation >= 5 else size  # 5-8 swap width and height
    return RgbPixels(np.ascontiguousarray(jpeg.apply_orientation(pixels, orientation)), full)


def _pil_pixels(image: Image.Image, where: str, background: tuple[int, int, int]) -> RgbPixels:
    full = tuple(image.info.get(ORIGINAL_SIZE, image.size))
    try:
        rgb = to_rgb(image, background)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{where}: cannot convert mode {image.mode!r} to RGB ({exc})") from None
    return RgbPixels(np.asarray(rgb), full)


def _encoded_pixels(data: bytes, where: str, max_pixels: int, background: tuple[int, int, int],
                    target_size: int | None) -> RgbPixels:
    fast = _fast_jpeg(data, where, max_pixels, target_size)
    if fast is not None:
        return fast
    return _pil_pixels(_from_file(io.BytesIO(data), where, max_pixels, target_size), where, background)


def load_pixels(source: object, index: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
                background: tuple[int, int, int] = LETTERBOX_FILL, target_size: int | None = None) -> RgbPixels:
    """RgbPixels from a path, encoded file bytes, a PIL image or a uint8 array; raises ImageError with one
    line. ``target_size``: the model's input side; a large JPEG is then decoded at reduced scale (never below
    that side), which is what the letterbox would shrink it to anyway. An RGB array is used as it is."""
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        return _encoded_pixels(_read_path(Path(source), where, max_pixels), where, max_pixels, background, target_size)
    where = f"image #{index}"
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"{where}: image bytes are empty")
        return _encoded_pixels(bytes(source), where, max_pixels, background, target_size)
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, max_pixels, where)
        return _pil_pixels(source, where, background)
    if isinstance(source, np.ndarray):
        array = _array_rgb(source, where, max_pixels, background)
        return RgbPixels(array, (array.shape[1], array.shape[0]))
    raise ImageError(f"image #{index}: expected a path, encoded image bytes, PIL image or HxWx3 uint8 array, "
                     f"got {type(source).__name__}")


def load_image(source: object, index: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS,
               background: tuple[int, int, int] = LETTERBOX_FILL, target_size: int | None = None) -> Image.Image:
    """``load_pixels`` as an 8-bit RGB PIL image (for drawing and the CLI); a reduced-scale decode carries its
    full size in ``info[ORIGINAL_SIZE]``."""
    pixels = load_pixels(source, index, max_pixels, background, target_size)
    image = Image.fromarray(pixels.array)
    if pixels.reduced:
        image.info[ORIGINAL_SIZE] = pixels.full_size
    return image
