import threading

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.contract import BOXES, CONFIDENCES, LABELS, SCORE
from edge_clipguard.preprocess import Letterbox, boxes_to_original, preprocess_image
from edge_clipguard.runtime import Detection, Predictor, Result
from edge_clipguard.runtime.decode import decode_outputs
from edge_clipguard.runtime.image_stage import ImageStage

TEXTS = ["About the stars: what a lovely day.", "The red circle is broken and I hate it!", "crosses, meh"]


def test_fp32_bundle_matches_pytorch_raw_outputs(predictor, torch_reference, images):
    tokens, pixels = predictor.tokenize(TEXTS), predictor.preprocess(images)
    got = predictor.infer(tokens, pixels)
    want, _ = torch_reference(TEXTS, images)
    np.testing.assert_allclose(got[SCORE], want[SCORE], atol=1e-4)
    np.testing.assert_allclose(got[BOXES], want[BOXES], atol=1e-3)
    np.testing.assert_allclose(got[CONFIDENCES], want[CONFIDENCES], atol=1e-4)


def test_results_match_pytorch_score_and_boxes_in_original_pixels(predictor, torch_reference, images):
    results = predictor.predict_batch(TEXTS, images)
    want, letterboxes = torch_reference(TEXTS, images)
    for row, (result, box, image) in enumerate(zip(results, letterboxes, images)):
        assert result.image_size == image.size
        assert abs(result.score - float(want[SCORE][row])) <= 1e-4
        expected = boxes_to_original(want[BOXES][row], box)
        assert len(result.detections) == want[BOXES].shape[1]  # min_confidence=0, nms_iou=1 keep all top-K
        for det in result.detections:  # order-insensitive: near-tied confidences may swap
            same_label = expected[want[LABELS][row] == det.label]
            assert np.abs(same_label - np.asarray(det.box)).max(axis=1).min() <= 1e-3
            assert 0 <= det.box[0] <= det.box[2] <= image.width and 0 <= det.box[1] <= det.box[3] <= image.height


def test_decode_maps_letterbox_pixels_back_to_the_original_image():
    # 200x100 image into 64 px: scale 0.32, resized 64x32, padded 16 px top and bottom.
    box = Letterbox(width=200, height=100, scale=0.32, pad_x=0.0, pad_y=16.0)
    outputs = {SCORE: np.asarray([12.0], np.float32),
               BOXES: np.asarray([[[0, 16, 64, 48], [32, 24, 48, 40]]], np.float32),
               CONFIDENCES: np.asarray([[0.2, 0.9]], np.float32), LABELS: np.asarray([[1, 0]], np.int64)}
    (result,) = decode_outputs(outputs, (box,), (False,), ("a", "b"), (0.0, 10.0), min_confidence=0.5)
    assert result.score == 10.0  # clipped to the manifest's range
    conf = float(np.float32(0.9))
    assert result.detections == (Detection(box=(100.0, 25.0, 150.0, 75.0), label=0, class_name="a", confidence=conf),)


def _decode_three(labels: list[int], nms_iou: float):
    """Boxes 0 and 1 overlap with IoU 0.6; box 2 is apart. Confidences 0.9, 0.8, 0.7."""
    box = Letterbox(width=64, height=64, scale=1.0, pad_x=0.0, pad_y=0.0)
    outputs = {SCORE: np.asarray([5.0], np.float32),
               BOXES: np.asarray([[[0, 0, 16, 16], [0, 4, 16, 20], [40, 40, 56, 56]]], np.float32),
               CONFIDENCES: np.asarray([[0.9, 0.8, 0.7]], np.float32), LABELS: np.asarray([labels], np.int64)}
    (result,) = decode_outputs(outputs, (box,), (False,), ("a", "b"), (0.0, 10.0), 0.0, nms_iou)
    return [round(d.confidence, 1) for d in result.detections]


def test_nms_drops_an_overlapping_weaker_box_of_the_same_class():
    assert _decode_three([0, 0, 0], nms_iou=0.5) == [0.9, 0.7]


def test_nms_keeps_overlapping_boxes_of_different_classes():
    assert _decode_three([0, 1, 0], nms_iou=0.5) == [0.9, 0.8, 0.7]


def test_nms_keeps_boxes_that_overlap_less_than_the_threshold():
    assert _decode_three([0, 0, 0], nms_iou=0.7) == [0.9, 0.8, 0.7]


def test_nms_iou_outside_zero_to_one_is_refused(tiny_bundle):
    from edge_clipguard.errors import ClipGuardError

    with pytest.raises(ClipGuardError, match=r"nms_iou must be between 0 and 1, got 1\.5"):
        Predictor.load(tiny_bundle, device="cpu", nms_iou=1.5)


def test_min_confidence_drops_weaker_detections(tiny_bundle, predictor, images):
    everything = predictor.predict(TEXTS[0], images[0])
    cut = sorted(d.confidence for d in everything.detections)[len(everything.detections) // 2]
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1, min_confidence=cut,
                        nms_iou=1.0) as strict:
        kept = strict.predict(TEXTS[0], images[0])
    expected = [d.confidence for d in everything.detections if d.confidence >= cut]
    assert [d.confidence for d in kept.detections] == expected


def test_detections_are_sorted_by_confidence(predictor, images):
    confidences = [d.confidence for d in predictor.predict(TEXTS[1], images[1]).detections]
    assert confidences == sorted(confidences, reverse=True)


def test_batch_equals_singles(predictor, images):
    batch = predictor.predict_batch(TEXTS, images)
    singles = [predictor.predict(t, i) for t, i in zip(TEXTS, images)]
    for b, s in zip(batch, singles):
        assert b.score == pytest.approx(s.score, abs=1e-5)
        assert [d.label for d in b.detections] == [d.label for d in s.detections]
        np.testing.assert_allclose([d.box for d in b.detections], [d.box for d in s.detections], atol=1e-3)


def test_path_pil_and_array_inputs_give_equal_results(predictor, images, tmp_path):
    path = tmp_path / "img.png"
    images[0].save(path)
    from_path = predictor.predict(TEXTS[0], path)
    from_str = predictor.predict(TEXTS[0], str(path))
    from_pil = predictor.predict(TEXTS[0], images[0])
    from_array = predictor.predict(TEXTS[0], np.asarray(images[0]))
    assert from_path == from_str == from_pil == from_array


def test_runtime_letterbox_equals_training_preprocess(predictor, images):
    from edge_clipguard.contract import DEFAULT_RESIZE
    from edge_clipguard.image_io import load_pixels

    stage = ImageStage(predictor.manifest.preprocess)
    for image in images:
        pixels = load_pixels(image)
        # what training does for a new model (data.dataset), with the package's constants
        want, want_box = preprocess_image(pixels.array, predictor.manifest.preprocess.image_size, resize=DEFAULT_RESIZE)
        got = stage([pixels])
        np.testing.assert_array_equal(got.pixel_values[0], want)
        assert got.letterboxes[0] == want_box


def test_predict_is_thread_safe(predictor, images):
    pairs = [(TEXTS[i % 3], images[(i * 2) % 3]) for i in range(12)]
    serial = [predictor.predict(t, i) for t, i in pairs]
    got: dict[int, Result] = {}

    def work(offset):
        for k in range(offset, len(pairs), 4):
            got[k] = predictor.predict(*pairs[k])

    threads = [threading.Thread(target=work, args=(o,)) for o in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [got[k] for k in range(len(pairs))] == serial


def test_text_encodings_are_cached_per_text(tiny_bundle):
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as pred:
        pred.tokenize(["a star", "a ring"])
        pred.tokenize(["a star"])
        info = pred.text_stage.cache_info()
    assert (info.hits, info.misses) == (1, 2)


def test_result_to_dict_is_json_ready(predictor, images):
    import json

    data = json.loads(json.dumps(predictor.predict(TEXTS[0], images[0]).to_dict()))
    assert set(data) == {"score", "detections", "text_truncated", "image_size"}
    assert data["image_size"] == [80, 48] and len(data["detections"][0]["box"]) == 4


def test_grayscale_image_predicts_like_its_rgb_copy(predictor, images):
    gray = images[0].convert("L")
    assert predictor.predict(TEXTS[0], gray) == predictor.predict(TEXTS[0], gray.convert("RGB"))


def test_pil_input_is_not_modified(predictor):
    image = Image.new("RGBA", (30, 20), (10, 20, 30, 0))
    before = image.tobytes()
    predictor.predict(TEXTS[0], image)
    assert image.mode == "RGBA" and image.tobytes() == before


def test_a_dropped_predictor_frees_its_backend_without_close(tiny_bundle):
    import gc

    predictor = Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1)
    runner = predictor.runner
    del predictor
    gc.collect()
    assert not runner.active and runner.text.session is None and runner.fusion.session is None


def test_close_twice_is_harmless(tiny_bundle):
    predictor = Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1)
    predictor.close()
    predictor.close()
    assert not predictor.runner.active


def test_a_bundle_trained_on_pillows_resize_is_fed_pillows_pixels(tiny_bundle, images, tmp_path):
    import json
    import shutil

    from edge_clipguard.image_io import load_pixels

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_bundle, legacy)
    manifest = json.loads((legacy / "manifest.json").read_text())
    del manifest["preprocess"]["resize"]  # as bundles were written before the field
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    with Predictor.load(legacy, backend="onnxruntime", device="cpu", threads=1) as old, \
            Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as new:
        size = old.manifest.preprocess.image_size
        for image in images:
            pil, _ = preprocess_image(load_pixels(image).array, size, resize="pillow-bilinear")
            cv, _ = preprocess_image(load_pixels(image).array, size, resize="opencv")
            np.testing.assert_array_equal(old.graph_pixels([image]).pixel_values[0], pil)
            np.testing.assert_array_equal(new.graph_pixels([image]).pixel_values[0], cv)
        first = load_pixels(images[0]).array
        assert not np.array_equal(preprocess_image(first, size, resize="pillow-bilinear")[0],
                                  preprocess_image(first, size, resize="opencv")[0])  # the check can fail
