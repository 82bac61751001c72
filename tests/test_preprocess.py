import numpy as np
from PIL import Image

from edge_clipguard.contract import LETTERBOX_FILL
from edge_clipguard.preprocess import boxes_to_input, boxes_to_original, letterbox, preprocess_image


def test_letterbox_keeps_aspect_and_pads_evenly():
    pixels, lb = letterbox(Image.new("RGB", (400, 200), (255, 0, 0)), 64)
    assert pixels.shape == (64, 64, 3)
    assert (lb.scale, lb.pad_x, lb.pad_y) == (64 / 400, 0.0, 16.0)
    assert tuple(pixels[0, 0]) == LETTERBOX_FILL and tuple(pixels[32, 32]) == (255, 0, 0)


def test_boxes_round_trip_through_letterbox():
    _, lb = letterbox(Image.new("RGB", (300, 500)), 96)
    boxes = np.array([[10.0, 20.0, 110.5, 220.0], [0.0, 0.0, 300.0, 500.0]], dtype=np.float32)
    np.testing.assert_allclose(boxes_to_original(boxes_to_input(boxes, lb), lb), boxes, atol=1e-3)


def test_normalised_padding_is_near_zero():
    chw, _ = preprocess_image(Image.new("RGB", (10, 40)), 32)
    assert chw.shape == (3, 32, 32) and chw.dtype == np.float32
    assert abs(float(chw[:, 16, 0].mean())) < 0.01
