"""One image path: the training dataset and the runtime Predictor turn the same file into the same tensor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.data.dataset import ManifestDataset
from edge_clipguard.data.manifest import Sample

EXIF_ORIENTATION = 0x0112


def _exif_rotated_rgba(path):
    """A 40x24 RGBA PNG, half transparent, whose EXIF says 'rotate 90° clockwise to display' (6)."""
    rgba = np.zeros((24, 40, 4), dtype=np.uint8)
    rgba[..., 0] = np.arange(40, dtype=np.uint8)[None, :] * 6
    rgba[..., 1] = np.arange(24, dtype=np.uint8)[:, None] * 10
    rgba[..., 3] = 255
    rgba[:, 20:, 3] = 0  # right half fully transparent
    rgba[:12, :20, 3] = 128  # a half-transparent corner
    image = Image.fromarray(rgba, mode="RGBA")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    image.save(path, exif=exif)
    return path


def _sixteen_bit_gray(path):
    """A 30x50 16-bit grayscale PNG spanning the whole 0..65535 range."""
    values = np.linspace(0, 65535, 30 * 50).astype(np.uint16).reshape(30, 50)
    Image.fromarray(values).save(path)  # uint16 -> mode I;16
    return path


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    from edge_clipguard.runtime import Predictor

    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as loaded:
        yield loaded


def _training_pixels(path, tokenizer, size):
    sample = Sample(image=str(path), text="about the stars: fine", score=5.0)
    return ManifestDataset([sample], tokenizer, size)[0]["pixel_values"].numpy()


@pytest.mark.parametrize("make", [_exif_rotated_rgba, _sixteen_bit_gray], ids=["exif-rotated-rgba", "16-bit-gray"])
def test_training_and_runtime_see_identical_pixels(make, tmp_path, predictor, tiny_tokenizer, tiny_cfg):
    path = make(tmp_path / "image.png")
    runtime = predictor.preprocess([path]).pixel_values[0]
    training = _training_pixels(path, tiny_tokenizer, tiny_cfg.image_size)
    np.testing.assert_array_equal(training, runtime)


def test_exif_orientation_is_applied_on_both_paths(tmp_path, predictor):
    path = _exif_rotated_rgba(tmp_path / "image.png")
    with Image.open(path) as stored:
        assert stored.size == (40, 24)
    assert predictor.preprocess([path]).letterboxes[0].width == 24  # displayed upright: 24 wide, 40 tall


def test_transparent_pixels_become_the_letterbox_grey_in_training(tmp_path, tiny_tokenizer, tiny_cfg):
    path = _exif_rotated_rgba(tmp_path / "image.png")
    pixels = _training_pixels(path, tiny_tokenizer, tiny_cfg.image_size)
    # After the rotation the transparent right half is the bottom half; the grey fill normalises to ~0.
    assert np.abs(pixels[:, -20:-12, 28:36]).max() < 0.01


def test_sixteen_bit_values_are_scaled_not_clipped(tmp_path, tiny_tokenizer, tiny_cfg):
    path = _sixteen_bit_gray(tmp_path / "image.png")
    pixels = _training_pixels(path, tiny_tokenizer, tiny_cfg.image_size)
    # Clipping 16-bit values to 255 would make almost the whole image white (+1.0 after normalising).
    assert pixels.min() < -0.9 and np.median(pixels) < 0.5
