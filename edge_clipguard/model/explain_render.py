"""An Explanation as one PNG: three panels (heat map, Grad-CAM of the score, Grad-CAM of the top detection)
over the image, the text and score on top, the text's tokens coloured by their attribution below.

numpy + Pillow only; written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_path
from .explain import Explanation

PANEL_SIDE = 320


def colormap(values: np.ndarray) -> np.ndarray:
    """[h, w] in [0, 1] -> [h, w, 3] uint8, dark blue -> cyan -> yellow -> red (a jet-like ramp)."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 128], [0, 200, 255], [255, 255, 0], [220, 0, 0]], dtype=np.float32)
    position = v * (len(stops) - 1)
    low = np.clip(np.floor(position).astype(int), 0, len(stops) - 2)
    frac = position - low
    return (stops[low[..., 0]] * (1 - frac) + stops[low[..., 0] + 1] * frac).astype(np.uint8)


def overlay(image: Image.Image, values: np.ndarray, alpha: float = 0.5) -> Image.Image:
    return Image.blend(image.convert("RGB"), Image.fromarray(colormap(values)), alpha)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render(explanation: Explanation, image: Image.Image) -> Image.Image:
    """The picture described in the module docstring."""
    e = explanation
    scale = PANEL_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    panels = []
    for title, values in ((f"heat map: {e.class_name}", e.heatmap), ("Grad-CAM: score", e.cam_score),
                          ("Grad-CAM: top detection", e.cam_detection)):
        panel = overlay(image, values).resize(size, Image.BILINEAR)
        pen = ImageDraw.Draw(panel)
        if e.detection is not None:
            box, confidence = e.detection
            pen.rectangle([v * scale for v in box], outline=(255, 255, 255), width=2)
            pen.text((box[0] * scale + 2, box[1] * scale + 2), f"{confidence:.2f}", fill=(255, 255, 255),
                     font=_font(12))
        pen.rectangle((0, 0, size[0], 16), fill=(0, 0, 0))
        pen.text((3, 2), title, fill=(255, 255, 255), font=_font(12))
        panels.append(panel)
    width = 3 * size[0] + 20
    rows = _token_rows(e, width)
    canvas = Image.new("RGB", (width, size[1] + 36 + 20 * rows), (255, 255, 255))
    pen = ImageDraw.Draw(canvas)
    pen.text((5, 4), f"score {e.score:.2f}/10   text: {e.text}"[:200], fill=(0, 0, 0), font=_font(14))
    for i, panel in enumerate(panels):
        canvas.paste(panel, (5 + i * (size[0] + 5), 24))
    _token_strip(pen, e, top=size[1] + 30, width=width)
    return canvas


def _token_rows(e: Explanation, width: int) -> int:
    """How many rows of tokens ``_token_strip`` will draw."""
    pen, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), _font(13)
    rows, x = 1, 5
    for token in e.tokens:
        right = x + pen.textlength(token, font=font) + 6
        if right > width - 5:
            rows, x = rows + 1, 5
            right = x + pen.textlength(token, font=font) + 6
        x = right + 3
    return rows


def _token_strip(pen: ImageDraw.ImageDraw, e: Explanation, top: int, width: int) -> None:
    """Tokens left to right, red where they push the score up, blue where they pull it down."""
    font = _font(13)
    limit = float(np.abs(e.token_attribution).max()) or 1.0
    x, y = 5, top
    for token, value in zip(e.tokens, e.token_attribution):
        strength = min(1.0, abs(float(value)) / limit)
        shade = int(255 * (1 - strength))
        fill = (255, shade, shade) if value > 0 else (shade, shade, 255)
        right = x + pen.textlength(token, font=font) + 6
        if right > width - 5:
            x, y = 5, y + 20
            right = x + pen.textlength(token, font=font) + 6
        pen.rectangle((x, y, right, y + 17), fill=fill)
        pen.text((x + 3, y + 1), token, fill=(0, 0, 0), font=font)
        x = right + 3


def save(explanation: Explanation, image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        render(explanation, image).save(tmp, format="PNG")
    return path
