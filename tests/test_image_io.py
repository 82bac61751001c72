"""edge_clipguard.image_io: reduced-scale JPEG decode for camera photos, and encoded bytes as input.

Tolerance (documented in the README): a JPEG at least twice the model's input side is decoded by
libjpeg's DCT scaling straight to about that side; after the letterbox the pixels differ from a full
decode + resize by at most 1 grey level on average and 6 at the 99th percentile (measured on a
12 MP upscaled photo: mean 0.57, p99 4, max 11 at 320 px).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.errors import ImageError
from edge_clipguard.image_io import draft_size, load_image, load_pixels
from edge_clipguard.preprocess import letterbox

EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def photo_jpeg(tmp_path_factory):
    """A 2400x1800 JPEG made from a real photo (scikit-learn's sample), and the same with EXIF rotation 6."""
    from sklearn.datasets import load_sample_images

    big = Image.fromarray(load_sample_images().images[0]).resize((2400, 1800), Image.BICUBIC)
    folder = tmp_path_factory.mktemp("jpeg")
    big.save(folder / "photo.jpg", quality=90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    big.save(folder / "rotated.jpg", quality=90, exif=exif)
    return folder


def test_draft_size_keeps_the_long_side_at_the_target():
    assert draft_size(4000, 3000, 320) == (320, 240)
    assert draft_size(3000, 4000, 320) == (240, 320)


def test_large_jpeg_is_decoded_at_reduced_scale_not_below_the_input_side(photo_jpeg):
    image = load_image(photo_jpeg / "photo.jpg", target_size=320)
    assert image.size == (600, 450)  # 1/4 scale: 1/8 would be 300 px, below the 320 px input


@pytest.mark.parametrize(("resize", "mean", "p99"), [("opencv", 1.5, 12), ("pillow-bilinear", 1.0, 6)])
def test_reduced_scale_decode_matches_full_decode_within_tolerance(photo_jpeg, resize, mean, p99):
    # opencv: the full decode shrinks 7.5x by pixel area, the 1/4-scale one 1.9x bilinearly (measured:
    # mean 1.02, p99 10); Pillow antialiases both (0.44, 4). A misplaced or mis-scaled image differs by > 10.
    full, _ = letterbox(load_image(photo_jpeg / "photo.jpg"), 320, resize=resize)
    fast, _ = letterbox(load_image(photo_jpeg / "photo.jpg", target_size=320), 320, resize=resize)
    diff = np.abs(full.astype(np.int16) - fast.astype(np.int16))
    assert diff.mean() <= mean and np.percentile(diff, 99) <= p99


def test_reduced_scale_decode_still_applies_exif_orientation(photo_jpeg):
    assert load_image(photo_jpeg / "rotated.jpg", target_size=320).size == (450, 600)


def test_reduced_scale_letterbox_maps_boxes_in_the_full_image_pixels(photo_jpeg):
    from edge_clipguard.preprocess import boxes_to_input

    _, full = letterbox(load_image(photo_jpeg / "photo.jpg"), 320)
    _, fast = letterbox(load_image(photo_jpeg / "photo.jpg", target_size=320), 320)
    assert fast == full and (fast.width, fast.height) == (2400, 1800)
    np.testing.assert_allclose(boxes_to_input(np.array([[0, 0, 2400, 1800]]), fast), [[0, 40, 320, 280]], atol=1e-3)


def test_reduced_scale_letterbox_of_a_rotated_photo_has_the_turned_full_size(photo_jpeg):
    _, lb = letterbox(load_image(photo_jpeg / "rotated.jpg", target_size=320), 320)
    assert (lb.width, lb.height) == (1800, 2400)


def test_small_jpeg_is_decoded_in_full(tmp_path):
    Image.new("RGB", (500, 300), (10, 200, 30)).save(tmp_path / "small.jpg")
    assert load_image(tmp_path / "small.jpg", target_size=320).size == (500, 300)


def test_encoded_bytes_decode_like_the_file(photo_jpeg):
    data = (photo_jpeg / "photo.jpg").read_bytes()
    from_bytes = np.asarray(load_image(data, target_size=320))
    assert np.array_equal(from_bytes, np.asarray(load_image(photo_jpeg / "photo.jpg", target_size=320)))


def test_corrupt_bytes_are_an_image_error_naming_the_item():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, "PNG")
    with pytest.raises(ImageError, match=r"^image #3: "):
        load_image(buffer.getvalue()[:30], index=3)


def test_a_file_larger_than_any_image_within_the_pixel_limit_is_refused_unread(tmp_path):
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\0" * (2 << 20))  # 2 MB; with 1,000 pixels the limit is 1 MB + 16 kB
    with pytest.raises(ImageError, match=rf"^{path}: file is 2097152 bytes, more than an image within the pixel"):
        load_pixels(path, max_pixels=1000)
