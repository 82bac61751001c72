"""Draw a Result onto its original image (boxes, class names, confidences, the score) and save it atomically."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path
from .errors import ImageError
from .results import Result

_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def _fit(pen, text: str, font, width: float) -> str:
    """``text``, cut and ended with an ellipsis where it is wider than ``width`` pixels."""
    if pen.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and pen.textlength(text + "…", font=font) > width:
        text = text[: max(1, len(text) * 9 // 10)]
    return text + "…"


def draw_result(image: Image.Image, result: Result, text: str | None = None) -> Image.Image:
    """A copy of the RGB ``image`` with every detection boxed and labelled, and the score (after the query
    ``text``, shortened to fit, when given) at the top left."""
    canvas = image.convert("RGB").copy()
    pen = ImageDraw.Draw(canvas)
    side = max(canvas.size)
    width = max(1, side // 300)
    font = _font(max(10, side // 40))
    for det in reversed(result.detections):  # strongest drawn last, on top
        color = _PALETTE[det.label % len(_PALETTE)]
        pen.rectangle(det.box, outline=color, width=width)
        caption = f"{det.class_name} {det.confidence:.2f}"
        left, top, right, bottom = pen.textbbox((det.box[0], det.box[1]), caption, font=font)
        y = max(0.0, det.box[1] - (bottom - top) - 2)
        pen.rectangle((left, y, right + 2, y + (bottom - top) + 2), fill=color)
        pen.text((det.box[0] + 1, y), caption, fill=(0, 0, 0), font=font)
    banner = f"score {result.score:.2f}/10" + ("  (text truncated)" if result.text_truncated else "")
    if text:
        room = canvas.size[0] - pen.textlength(banner, font=font) - 24
        banner = f'"{_fit(pen, " ".join(text.split()), font, room)}"  {banner}'
    left, top, right, bottom = pen.textbbox((4, 4), banner, font=font)
    pen.rectangle((0, 0, right + 4, bottom + 4), fill=(0, 0, 0))
    pen.text((4, 4), banner, fill=(255, 255, 255), font=font)
    return canvas


def save_image_atomic(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` to ``path`` (format from the extension) via a temp file + rename."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image extension {path.suffix!r}; use .png or .jpg")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path
