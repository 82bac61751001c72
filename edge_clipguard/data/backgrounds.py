"""Real photo backgrounds that ship inside installed packages (no pixels committed here).

scikit-learn's two sample photos and the photos bundled in scikit-image's data folder (only
those stored in the wheel itself; none are fetched over the network).
"""

from __future__ import annotations

import functools

import numpy as np

# skimage.data loaders whose files ship inside the scikit-image wheel.
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "brick", "grass", "gravel", "camera", "coins", "moon",
)


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float64) / max(float(image.max()), 1e-8))).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


@functools.lru_cache(maxsize=1)
def load_backgrounds() -> tuple[np.ndarray, ...]:
    """All background photos as HxWx3 uint8 arrays (cached for the process)."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = [_to_rgb_uint8(img) for img in load_sample_images().images]
    photos += [_to_rgb_uint8(getattr(skdata, name)()) for name in SKIMAGE_PHOTOS]
    return tuple(photos)
