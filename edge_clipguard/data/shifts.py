"""Shifted test scenes (``data scenes --shift``): the same task under conditions training did not show.

A test set drawn like the training set says how well a model learned the generator, not how it holds up on a
device. Each shift moves one thing a camera or a scene changes:

  ``dark``     the normal scenes (same objects, same boxes) at low light: brightness x0.25-0.45, a lifted black
               level, and sensor noise (Gaussian, sigma 4-10 grey levels), as a dim indoor frame looks;
  ``blur``     the normal scenes out of focus or moving: Gaussian blur, radius 1.5-3.5 px of a 256-448 px image;
  ``small``    objects a third the usual size (longest side 3-12 % of the shorter image side, not 8-35 %);
  ``clutter``  8-16 distractor strokes (not 0-3) and every object half-covered by patches half the time.

``dark`` and ``blur`` keep each scene's layout (the effect draws from its own generator), so their rows pair with
the normal test rows one to one; ``small`` and ``clutter`` change the layout itself. Shifted scenes go to
``<split>-<shift>.jsonl`` and ``images/<split>-<shift>/``, beside the normal split.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageFilter

from ..errors import DataError

SHIFTS = ("dark", "blur", "small", "clutter")
_SHIFT_CODE = {name: 100 + i for i, name in enumerate(SHIFTS)}


def check_shift(shift: str | None) -> None:
    if shift is not None and shift not in SHIFTS:
        raise DataError(f"--shift must be one of {list(SHIFTS)}, got {shift!r}")


def shifted_spec(spec, shift: str | None):
    """The SceneSpec a shift renders with (layout shifts); ``dark``/``blur`` keep the spec."""
    if shift == "small":
        return dataclasses.replace(spec, min_object_frac=0.03, max_object_frac=0.12)
    if shift == "clutter":
        return dataclasses.replace(spec, distractors=(8, 17), occlusion_prob=0.5)
    return spec


def apply_shift(image: Image.Image, shift: str | None, seed: int, split_code: int, index: int) -> Image.Image:
    """The photometric shifts, drawn from a generator of their own so the scene's layout is the normal one."""
    if shift not in ("dark", "blur"):
        return image
    rng = np.random.default_rng([seed, split_code, index, _SHIFT_CODE[shift]])
    if shift == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1.5, 3.5))))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels * rng.uniform(0.25, 0.45) + rng.uniform(4, 12)
    pixels += rng.normal(0.0, rng.uniform(4, 10), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def shifted_split_name(split: str, shift: str | None) -> str:
    return split if shift is None else f"{split}-{shift}"
