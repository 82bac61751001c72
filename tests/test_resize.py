import cv2
import numpy as np
import pytest
from PIL import Image

from edge_clipguard.preprocess import fill_border, letterbox
from edge_clipguard.resize import resize_into


def _photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus sharp-edged blocks: the content where resampling weights matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    blocks = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)).repeat(16, 0).repeat(16, 1)
    return ((base + blocks[:height, :width]) // 2).astype(np.uint8)


def test_opencv_resize_is_opencv_bilinear_for_a_shrink_of_at_most_two():
    pixels = _photo(429, 281)
    out = np.empty((210, 320, 3), np.uint8)
    resize_into(pixels, out, "opencv")
    assert np.array_equal(out, cv2.resize(pixels, (320, 210), interpolation=cv2.INTER_LINEAR))


def test_opencv_resize_averages_pixel_areas_when_shrinking_more_than_two():
    pixels = _photo(1920, 1080)
    out = np.empty((180, 320, 3), np.uint8)
    resize_into(pixels, out, "opencv")
    assert np.array_equal(out, cv2.resize(pixels, (320, 180), interpolation=cv2.INTER_AREA))


def test_opencv_resize_writes_into_a_view_of_the_canvas_and_nowhere_else():
    canvas = np.zeros((320, 320, 3), np.uint8)
    resize_into(_photo(281, 429), canvas[:, 55:265], "opencv")
    assert np.array_equal(canvas[:, 55:265], cv2.resize(_photo(281, 429), (210, 320), interpolation=cv2.INTER_LINEAR))
    assert canvas[:, :55].max() == 0 and canvas[:, 265:].max() == 0


def test_pillow_resize_is_pillows_bilinear():
    pixels = _photo(500, 375)
    out = np.empty((240, 320, 3), np.uint8)
    resize_into(Image.fromarray(pixels), out, "pillow-bilinear")
    assert np.array_equal(out, np.asarray(Image.fromarray(pixels).resize((320, 240), Image.BILINEAR)))


def test_a_pil_image_and_its_array_resize_to_the_same_pixels():
    pixels = _photo(310, 309)
    from_array, from_pil = np.empty((319, 320, 3), np.uint8), np.empty((319, 320, 3), np.uint8)
    resize_into(pixels, from_array, "opencv")
    resize_into(Image.fromarray(pixels), from_pil, "opencv")
    assert np.array_equal(from_array, from_pil)


def test_the_two_methods_differ_by_a_few_grey_levels_on_average():
    # Why the method is part of the model: close, but not the same pixels.
    pixels = _photo(429, 281)
    fast, slow = np.empty((210, 320, 3), np.uint8), np.empty((210, 320, 3), np.uint8)
    resize_into(pixels, fast, "opencv")
    resize_into(pixels, slow, "pillow-bilinear")
    diff = np.abs(fast.astype(int) - slow.astype(int))
    assert 0.2 < diff.mean() < 5 and diff.max() > 5


def test_an_unknown_resize_method_is_refused_by_name():
    with pytest.raises(ValueError, match="resize method must be one of .*'bicubic'"):
        resize_into(_photo(20, 20), np.empty((10, 10, 3), np.uint8), "bicubic")


def test_letterbox_uses_the_resize_method_it_is_given():
    image = _photo(400, 300)
    fast, _ = letterbox(image, 64, resize="opencv")
    slow, _ = letterbox(image, 64, resize="pillow-bilinear")
    assert not np.array_equal(fast, slow)
    assert np.array_equal(fast[8:56], cv2.resize(image, (64, 48), interpolation=cv2.INTER_AREA))


def test_letterbox_of_an_array_maps_boxes_in_the_full_size_it_is_told():
    _, lb = letterbox(_photo(600, 450), 320, full_size=(2400, 1800))
    assert (lb.width, lb.height, lb.scale) == (2400, 1800, pytest.approx(320 / 2400))


def test_fill_border_paints_only_outside_the_image_rectangle():
    canvas = np.zeros((8, 10, 3), np.uint8)
    fill_border(canvas, (2, 1, 5, 4), (7, 8, 9))
    inside = np.zeros((8, 10), bool)
    inside[1:5, 2:7] = True
    assert (canvas[inside] == 0).all()
    assert (canvas[~inside] == (7, 8, 9)).all()


@pytest.mark.parametrize("size, out_size", [((429, 281), (320, 210)),    # shrink by at most 2: bilinear
                                            ((1920, 1080), (320, 180)),  # shrink by 6: pixel areas
                                            ((150, 100), (320, 213)),    # grow
                                            ((281, 429), (210, 320))])
def test_without_opencv_the_opencv_method_is_within_one_grey_level_of_opencv(monkeypatch, size, out_size):
    import edge_clipguard.resize as resize

    pixels = _photo(*size)
    interpolation = cv2.INTER_AREA if out_size[0] / size[0] < resize.AREA_BELOW_SCALE else cv2.INTER_LINEAR
    expected = cv2.resize(pixels, out_size, interpolation=interpolation)
    monkeypatch.setattr(resize, "opencv_available", lambda: False)
    out = np.empty((out_size[1], out_size[0], 3), np.uint8)
    resize_into(pixels, out, "opencv")
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_without_opencv_the_resize_writes_into_a_view_of_the_canvas_and_nowhere_else(monkeypatch):
    import edge_clipguard.resize as resize

    monkeypatch.setattr(resize, "opencv_available", lambda: False)
    canvas = np.zeros((320, 320, 3), np.uint8)
    resize_into(_photo(281, 429), canvas[:, 55:265], "opencv")
    assert canvas[:, 55:265].max() > 0 and canvas[:, :55].max() == 0 and canvas[:, 265:].max() == 0
