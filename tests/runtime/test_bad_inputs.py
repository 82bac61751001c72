"""Each bad input raises its own ClipGuardError subclass with a one-line message."""

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.image_io import load_image
from edge_clipguard.runtime import BundleError, ImageError, IntegrityError, Predictor, TextError


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (40, 70, 3), dtype=np.uint8)


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_a_text_error(predictor, image, text):
    with pytest.raises(TextError) as exc:
        predictor.predict(text, image)
    assert "empty" in _one_line(exc)


@pytest.mark.parametrize(("text", "size"), [("a" * (16 * 1024 + 1), "16,385"),
                                            (("é" * (8 * 1024 + 1)).encode("utf-8"), "16,386")])
def test_a_text_above_the_byte_limit_is_refused_before_it_is_tokenized(tiny_bundle, image, text, size):
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as pred:
        with pytest.raises(TextError) as exc:
            pred.predict(text, image)
        assert pred.text_stage.cache_info().misses == 0
    assert f"text #0: {size} bytes of UTF-8 is above the 16,384-byte limit" in _one_line(exc)


def test_a_text_at_the_byte_limit_is_scored(predictor, image):
    assert predictor.predict("a " * (8 * 1024), image).text_truncated is True


def test_the_text_cache_stays_within_its_byte_budget(tiny_bundle):
    from tokenizers import Tokenizer

    from edge_clipguard.runtime.text_stage import TextStage

    stage = TextStage(Tokenizer.from_file(str(tiny_bundle / "tokenizer.json")), 16, cache_size=1000,
                      cache_bytes=20_000)
    for i in range(200):
        stage([f"text number {i} " + "word " * (i % 50)])
    info = stage.cache_info()
    assert 0 < info.bytes <= 20_000 and info.entries < 200 and info.misses == 200
    stage(["text number 199 " + "word " * 49])
    assert stage.cache_info().hits == 1  # the most recent entries stay


def test_overlong_text_is_truncated_and_reported(predictor, image):
    assert predictor.predict("a star " * 40, image).text_truncated is True
    assert predictor.predict("a star", image).text_truncated is False


def test_non_utf8_bytes_are_a_text_error(predictor, image):
    with pytest.raises(TextError) as exc:
        predictor.predict(b"caf\xe9 star", image)
    assert "UTF-8" in _one_line(exc) and "0xe9" in str(exc.value)


def test_utf8_bytes_equal_the_str(predictor, image):
    assert predictor.predict("café star".encode(), image) == predictor.predict("café star", image)


def test_non_text_object_is_a_text_error(predictor, image):
    with pytest.raises(TextError):
        predictor.predict(42, image)


def test_corrupt_image_file_is_an_image_error(predictor, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", path)
    assert str(path) in _one_line(exc)


def test_truncated_png_is_an_image_error(predictor, tmp_path, image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", path)
    _one_line(exc)


def test_zero_byte_image_file_is_an_image_error(predictor, tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", path)
    assert "empty" in _one_line(exc)


def test_missing_image_file_is_an_image_error(predictor, tmp_path):
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", tmp_path / "nope.png")
    assert "no such" in _one_line(exc)


def test_a_folder_given_as_an_image_file_is_an_image_error_naming_it(predictor, tmp_path):
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", tmp_path)
    assert _one_line(exc).startswith(f"{tmp_path}: no such image file")


def test_zero_size_array_is_an_image_error(predictor):
    with pytest.raises(ImageError) as exc:
        predictor.predict("a star", np.zeros((0, 10, 3), np.uint8))
    assert "zero size" in _one_line(exc)


@pytest.mark.parametrize("array", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 2), np.uint8)])
def test_wrong_array_dtype_or_shape_is_an_image_error(predictor, array):
    with pytest.raises(ImageError):
        predictor.predict("a star", array)


def test_decompression_bomb_png_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)  # 144 M pixels in a few KB
    with pytest.raises(ImageError) as exc:
        load_image(path)
    assert "decompression" in _one_line(exc)


def test_image_over_our_pixel_limit_is_refused(tmp_path, image):
    path = tmp_path / "ok.png"
    Image.fromarray(image).save(path)
    with pytest.raises(ImageError) as exc:
        load_image(path, max_pixels=1000)
    assert "exceeds the limit of 1000" in _one_line(exc)


def test_grayscale_becomes_rgb_with_equal_channels():
    rgb = np.asarray(load_image(Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), mode="L")))
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == np.arange(256).reshape(16, 16)).all() and (rgb[..., 0] == rgb[..., 2]).all()


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.asarray([[0, 257, 32896, 65535]], dtype=np.uint16)).save(path)  # PNG keeps 16 bits
    with Image.open(path) as stored:
        assert stored.mode == "I;16"
    assert np.asarray(load_image(path))[0, :, 0].tolist() == [0, 1, 128, 255]


def test_thirty_two_bit_integer_image_is_scaled_from_the_16_bit_range():
    image = Image.fromarray(np.asarray([[0, 257, 32896, 65535, 70000]], dtype=np.int32))
    assert image.mode == "I"
    assert np.asarray(load_image(image))[0, :, 0].tolist() == [0, 1, 128, 255, 255]


def test_rgba_transparent_pixels_become_the_background_and_opaque_keep_colour():
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (200, 10, 20, 255)
    rgba[0, 1] = (200, 10, 20, 0)
    rgb = np.asarray(load_image(rgba, background=(128, 128, 128)))
    assert rgb[0, 0].tolist() == [200, 10, 20] and rgb[0, 1].tolist() == [128, 128, 128]


def test_wrong_schema_version_is_a_bundle_error(bundle_copy):
    manifest = bundle_copy / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(BundleError) as exc:
        Predictor.load(bundle_copy, backend="onnxruntime", device="cpu")
    assert "schema_version 99" in _one_line(exc)


@pytest.mark.parametrize(("name", "feature_cache"), [("model.fp32.text.onnx", True), ("model.fp32.fusion.onnx", True),
                                                     ("tokenizer.json", True), ("model.fp32.onnx", False)])
def test_tampered_file_is_an_integrity_error(bundle_copy, name, feature_cache):
    """Each file the loader runs is checked: the parts with the feature cache on, the whole graph with it off."""
    with open(bundle_copy / name, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(IntegrityError) as exc:
        Predictor.load(bundle_copy, backend="onnxruntime", device="cpu",
                       **({} if feature_cache else {"text_feature_cache_bytes": 0}))
    assert name in _one_line(exc)


def test_missing_precision_artifact_is_a_bundle_error(tiny_bundle):
    with pytest.raises(BundleError) as exc:
        Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", precision="int8")
    assert "no int8 ONNX artifact" in _one_line(exc)


def test_tensorrt_without_engine_is_a_bundle_error(tiny_bundle):
    with pytest.raises(BundleError) as exc:
        Predictor.load(tiny_bundle, backend="tensorrt", device="cuda")
    assert "no fp32 TensorRT engine" in _one_line(exc)


def test_missing_bundle_directory_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError):
        Predictor.load(tmp_path / "nothing", backend="onnxruntime", device="cpu")


def test_mismatched_text_and_image_counts_are_refused(predictor, image):
    with pytest.raises(ImageError):
        predictor.predict_batch(["a", "b"], [image])
