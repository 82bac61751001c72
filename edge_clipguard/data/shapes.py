"""Rendered object classes for the scenes: each drawn as an RGBA sprite with an exact tight box.

Shapes are drawn 4x oversampled then reduced (anti-aliased edges), rotated, and cropped to the
pixels whose alpha is >= 128, so the sprite's extent *is* the object's box when pasted.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
_OVERSAMPLE = 4


def plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "x", "ch", "sh")) else "s")


def _polygon(name: str, w: float, h: float) -> list[list[tuple[float, float]]]:
    """Outline polygons (or ellipse boxes, marked by 2 points) of a class, in a w x h canvas."""
    if name == "triangle":
        return [[(w / 2, 0), (w, h), (0, h)]]
    if name == "star":
        points = []
        for k in range(10):
            radius = 0.5 if k % 2 == 0 else 0.2
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((w * (0.5 + radius * math.cos(angle)), h * (0.5 + radius * math.sin(angle)) * 1.05))
        return [points]
    if name == "cross":
        t = 0.34
        return [[(w * (0.5 - t / 2), 0), (w * (0.5 + t / 2), 0), (w * (0.5 + t / 2), h * (0.5 - t / 2)),
                 (w, h * (0.5 - t / 2)), (w, h * (0.5 + t / 2)), (w * (0.5 + t / 2), h * (0.5 + t / 2)),
                 (w * (0.5 + t / 2), h), (w * (0.5 - t / 2), h), (w * (0.5 - t / 2), h * (0.5 + t / 2)),
                 (0, h * (0.5 + t / 2)), (0, h * (0.5 - t / 2)), (w * (0.5 - t / 2), h * (0.5 - t / 2))]]
    raise ValueError(name)


def render_sprite(name: str, width: int, height: int, color: tuple[int, int, int], angle: float,
                  rng: np.random.Generator) -> Image.Image:
    """Draw one object of class ``name`` (``width`` x ``height`` before rotation by ``angle`` degrees).

    Returns an RGBA image cropped to the object's alpha >= 128 extent.
    """
    if name not in SHAPE_CLASSES:
        raise ValueError(f"unknown shape class {name!r}; expected one of {SHAPE_CLASSES}")
    s = _OVERSAMPLE
    w, h = max(4, width) * s, max(4, height) * s
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    fill = (*color, 255)
    outline = (*(int(c * 0.45) for c in color), 255)
    line = max(1, int(min(w, h) * rng.uniform(0.02, 0.06)))
    if name == "circle":
        draw.ellipse((0, 0, w - 1, h - 1), fill=fill, outline=outline, width=line)
    elif name == "square":
        draw.rectangle((0, 0, w - 1, h - 1), fill=fill, outline=outline, width=line)
    elif name == "ring":
        draw.ellipse((0, 0, w - 1, h - 1), fill=fill, outline=outline, width=line)
        hole = rng.uniform(0.25, 0.35)
        draw.ellipse((w * hole, h * hole, w * (1 - hole), h * (1 - hole)), fill=(0, 0, 0, 0))
    else:
        for poly in _polygon(name, w - 1, h - 1):
            draw.polygon(poly, fill=fill, outline=outline, width=line)
    # Light texture so objects are not flat colour: random stripes of the darker tone.
    if rng.random() < 0.4:
        stripes = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        sd = ImageDraw.Draw(stripes)
        step = max(2, int(min(w, h) * rng.uniform(0.12, 0.25)))
        for x in range(-h, w, step):
            sd.line((x, 0, x + h, h), fill=(*outline[:3], 110), width=max(1, step // 3))
        alpha = canvas.getchannel("A")
        canvas = Image.alpha_composite(canvas, stripes)
        canvas.putalpha(alpha)
    sprite = canvas.resize((max(4, width), max(4, height)), Image.LANCZOS)
    sprite = sprite.rotate(angle, resample=Image.BICUBIC, expand=True)
    alpha = np.asarray(sprite.getchannel("A"))
    ys, xs = np.nonzero(alpha >= 128)
    return sprite.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
