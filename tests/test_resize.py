import multiprocessing

import numpy as np
import pytest
from PIL import Image

from edge_clipguard import resize
from edge_clipguard.preprocess import fill_border, letterbox
from edge_clipguard.resize import band_rows, resize_into


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth gradients plus sharp-edged blocks: the content where resampling weights matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)).repeat(16, 0).repeat(16, 1)
    return Image.fromarray(((base + blocks[:height, :width]) // 2).astype(np.uint8))


@pytest.mark.parametrize(("size", "out"), [((310, 309), (320, 319)), ((500, 375), (320, 240)), ((64, 900), (21, 320))])
def test_banded_resize_is_within_one_level_of_pillow(size, out):
    image = _photo(*size)
    banded = np.empty((out[1], out[0], 3), np.uint8)
    resize_into(image, banded)
    full = np.asarray(image.resize(out, Image.BILINEAR)).astype(int)
    assert np.abs(banded.astype(int) - full).max() <= 1


def test_banded_resize_gives_the_same_pixels_with_or_without_the_helper_thread(monkeypatch):
    image = _photo(310, 309)
    threaded = np.empty((319, 320, 3), np.uint8)
    resize_into(image, threaded)
    monkeypatch.setattr(resize, "_worker_pool", lambda: None)
    sequential = np.empty_like(threaded)
    resize_into(image, sequential)
    assert np.array_equal(threaded, sequential)


def test_band_count_is_fixed_and_short_outputs_are_one_band():
    assert band_rows(319) == [(0, 160), (160, 319)]
    assert band_rows(40) == [(0, 40)]


def _letterbox_in_child(seed: int) -> np.ndarray:
    return letterbox(_photo(310, 309, seed), 320)[0]


def test_letterbox_works_in_a_forked_child_after_the_parent_used_the_pool():
    parent = _letterbox_in_child(3)  # creates the helper thread in this process
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_letterbox_in_child, (3,)).get(timeout=60)  # a dead pool would hang here
    assert np.array_equal(parent, child)


def test_fill_border_paints_only_outside_the_image_rectangle():
    canvas = np.zeros((8, 10, 3), np.uint8)
    fill_border(canvas, (2, 1, 5, 4), (7, 8, 9))
    inside = np.zeros((8, 10), bool)
    inside[1:5, 2:7] = True
    assert (canvas[inside] == 0).all()
    assert (canvas[~inside] == (7, 8, 9)).all()
