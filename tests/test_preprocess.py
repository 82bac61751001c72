import numpy as np
from PIL import Image

from edge_clipguard.contract import LETTERBOX_FILL
from edge_clipguard.preprocess import (
    Letterbox,
    box_to_original,
    boxes_to_input,
    boxes_to_original,
    letterbox,
    preprocess_image,
)


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


def test_one_box_maps_back_like_the_array_version_clipped_to_the_image():
    lb = Letterbox(width=200, height=100, scale=0.32, pad_x=0.0, pad_y=16.0)
    boxes = np.asarray([[0, 16, 64, 48], [32, 24, 48, 40], [-5, 0, 70, 60]], np.float32)
    want = boxes_to_original(boxes, lb)
    got = np.asarray([box_to_original(b, lb) for b in boxes.tolist()])
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert got[2].tolist() == [0.0, 0.0, 200.0, 100.0]
