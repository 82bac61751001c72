"""edge_clipguard.jpeg: the fast JPEG path gives Pillow's pixels, EXIF turns and full sizes, or steps aside."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from edge_clipguard import image_io, jpeg
from edge_clipguard.errors import ImageError
from edge_clipguard.image_io import load_pixels

EXIF_ORIENTATION = 0x0112


def _photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x * y) % 251], -1)
    noise = rng.integers(0, 40, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, orientation: int | None = None, **save) -> bytes:
    buffer = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        save["exif"] = exif
    image.save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


def _pillow_pixels(data: bytes, target_size: int | None, monkeypatch) -> image_io.RgbPixels:
    """What load_pixels gives when the fast path steps aside (the Pillow decode)."""
    with monkeypatch.context() as patch:
        patch.setattr(jpeg, "jpeg_size", lambda _data: None)
        return load_pixels(data, target_size=target_size)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_read_from_the_bytes(orientation):
    assert jpeg.exif_orientation(_jpeg(_photo(40, 30), orientation)) == orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_turns_pixels_as_pillows_exif_transpose(orientation):
    data = _jpeg(_photo(40, 30), orientation)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    got = jpeg.apply_orientation(np.asarray(Image.open(io.BytesIO(data))), orientation)
    assert np.array_equal(got, want)


def test_a_jpeg_without_exif_has_orientation_one():
    assert jpeg.exif_orientation(_jpeg(_photo(40, 30))) == 1


def test_a_truncated_exif_segment_reads_as_orientation_one():
    data = _jpeg(_photo(40, 30), 6)
    start = data.index(b"Exif\x00\x00")
    assert jpeg.exif_orientation(data[:start + 12]) == 1


@pytest.mark.parametrize(("size", "target"), [((429, 281), 320), ((2400, 1800), 320), ((1001, 777), 320),
                                              ((641, 480), 320), ((700, 700), 64)])
def test_fast_path_gives_pillows_pixels_and_full_size(size, target, monkeypatch):
    data = _jpeg(_photo(*size))
    fast = load_pixels(data, target_size=target)
    slow = _pillow_pixels(data, target, monkeypatch)
    assert fast.full_size == slow.full_size == size
    assert fast.array.shape == slow.array.shape and np.array_equal(fast.array, slow.array)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_fast_path_applies_exif_orientation_at_reduced_scale_like_pillow(orientation, monkeypatch):
    data = _jpeg(_photo(1300, 700), orientation)
    fast = load_pixels(data, target_size=320)
    slow = _pillow_pixels(data, 320, monkeypatch)
    assert fast.full_size == slow.full_size == ((700, 1300) if orientation != 3 else (1300, 700))
    assert np.array_equal(fast.array, slow.array) and fast.array.flags.c_contiguous


def test_a_grey_jpeg_decodes_to_rgb_like_pillow(monkeypatch):
    data = _jpeg(_photo(64, 48).convert("L"))
    assert np.array_equal(load_pixels(data).array, _pillow_pixels(data, None, monkeypatch).array)


def test_a_cmyk_jpeg_is_left_to_pillow(monkeypatch):
    data = _jpeg(_photo(64, 48).convert("CMYK"))
    assert jpeg.jpeg_size(data) is None
    assert load_pixels(data).array.shape == (48, 64, 3)


def test_a_truncated_jpeg_that_pillow_refuses_is_still_an_image_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(_jpeg(_photo(200, 150))[:600])
    with pytest.raises(ImageError, match=rf"^{path}: "):
        load_pixels(path)


def test_the_fast_path_checks_the_pixel_limit_before_decoding():
    with pytest.raises(ImageError, match="exceeds the limit of 1000"):
        load_pixels(_jpeg(_photo(200, 150)), max_pixels=1000)


def test_an_rgb_array_is_used_without_a_copy():
    frame = np.zeros((30, 40, 3), np.uint8)
    assert load_pixels(frame).array is frame



def test_an_orientation_only_in_xmp_is_left_to_pillow_which_honours_it():
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
    data = _jpeg(_photo(40, 30), xmp=xmp)
    assert jpeg.exif_orientation(data) is None
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    got = load_pixels(data)
    assert got.array.shape == (40, 30, 3) and np.array_equal(got.array, want) and got.full_size == (30, 40)


def test_exif_without_an_orientation_tag_reads_as_orientation_one():
    exif = Image.Exif()
    exif[0x010F] = "camera maker"
    assert jpeg.exif_orientation(_jpeg(_photo(40, 30), exif=exif)) == 1
