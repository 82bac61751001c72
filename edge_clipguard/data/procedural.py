"""Procedural scene backgrounds: seeded gradients, smooth noise and wave textures (numpy + Pillow).

Why: photo backgrounds come from third-party images inside installed packages; anything we
commit (the calibration set) must hold only pixels we drew ourselves. These backgrounds give the
image tower colour ramps, low-frequency blotches and fine texture like a photo would, while
avoiding crisp flat-colour shapes that could pass for one of the object classes.
Every draw comes from the caller's ``numpy.random.Generator``: same state, same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _upsample(grid: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic upsampling of a small float grid [h, w] to [height, width] (Pillow's 'F' mode)."""
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize((width, height), Image.BICUBIC))


def smooth_noise(rng: np.random.Generator, width: int, height: int, octaves: int = 4,
                 base_cells: int = 3, persistence: float = 0.5) -> np.ndarray:
    """Fractal value noise in about [0, 1], shape [height, width]: octave k has ``base_cells * 2**k``
    random values across the longer side, weighted ``persistence**k``."""
    total, weight = np.zeros((height, width), np.float32), 0.0
    longer = max(width, height)
    for k in range(octaves):
        cells = base_cells * 2**k
        gw, gh = max(2, round(cells * width / longer) + 1), max(2, round(cells * height / longer) + 1)
        amp = persistence**k
        total += amp * _upsample(rng.random((gh, gw)), width, height)
        weight += amp
    return total / weight


def linear_gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A ramp from 0 to 1 along a random direction, shape [height, width]."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * np.cos(angle) + ys * np.sin(angle)
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


def wave_texture(rng: np.random.Generator, width: int, height: int, warp_by: np.ndarray) -> np.ndarray:
    """Marble/wood-like bands in [-1, 1]: a sine along a random direction, its phase warped by noise."""
    angle = rng.uniform(0.0, np.pi)
    period = rng.uniform(0.04, 0.25) * max(width, height)
    warp = rng.uniform(0.0, 12.0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs * np.cos(angle) + ys * np.sin(angle)) / period
    return np.sin(2.0 * np.pi * t + warp * warp_by)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` RGB colours in [0, 255] around a random base, so a background has a coherent look."""
    base = rng.uniform(20, 235, size=3)
    return np.clip(base + rng.normal(0, 60, size=(n, 3)), 0, 255).astype(np.float32)


def procedural_background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """One RGB background: a two-colour gradient, tinted smooth-noise blotches and optional wave
    bands. Returns a ``width`` x ``height`` Pillow image. No per-pixel grain: it would make the
    committed PNGs several times larger and adds nothing a camera's noise would teach."""
    colors = _palette(rng, 4)
    ramp = linear_gradient(rng, width, height)[..., None]
    image = colors[0] * (1.0 - ramp) + colors[1] * ramp
    blotches = smooth_noise(rng, width, height, octaves=int(rng.integers(2, 5)), base_cells=int(rng.integers(2, 5)))
    strength = rng.uniform(0.3, 0.8)
    image = image * (1.0 - strength * blotches[..., None]) + colors[2] * strength * blotches[..., None]
    if rng.random() < 0.5:
        bands = wave_texture(rng, width, height, smooth_noise(rng, width, height, octaves=3))
        image += rng.uniform(10, 45) * bands[..., None] * (colors[3] / 255.0 - 0.5)[None, None]
    return Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8), mode="RGB")


def procedural_patch(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A busy multi-colour patch (independent fractal noise per channel, stretched contrast) to
    occlude part of an object. At patch scale a background would be nearly flat, and a flat
    rectangle looks exactly like the ``square`` class; this reads as clutter instead."""
    channels = [smooth_noise(rng, width, height, octaves=3, base_cells=int(rng.integers(2, 5))) for _ in range(3)]
    noise = np.stack(channels, axis=-1)
    low, high = noise.min(axis=(0, 1)), noise.max(axis=(0, 1))
    noise = (noise - low) / np.maximum(high - low, 1e-6)
    return Image.fromarray((255 * noise).round().astype(np.uint8), mode="RGB")
