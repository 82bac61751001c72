"""Differential test of the fast JPEG path's EXIF orientation against Pillow's exif_transpose: random sizes,
chroma subsampling, quality, orientation tags (valid, invalid, absent) among other EXIF tags in either byte
order, at full and reduced scale. The pixels and the full size must be Pillow's, exactly."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from edge_clipguard import jpeg
from edge_clipguard.image_io import load_pixels

ORIENTATION, MAKE, SOFTWARE, ARTIST = 0x0112, 0x010F, 0x0131, 0x013B


@st.composite
def photos(draw) -> tuple[bytes, int | None]:
    width, height = draw(st.integers(8, 120)), draw(st.integers(8, 120))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif.endian = draw(st.sampled_from(["<", ">"]))
    for tag in draw(st.lists(st.sampled_from([MAKE, SOFTWARE, ARTIST]), unique=True, max_size=3)):
        exif[tag] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
    orientation = draw(st.one_of(st.none(), st.integers(1, 8), st.sampled_from([0, 9, 255, 65535])))
    if orientation is not None:
        exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=draw(st.integers(40, 95)),
                                 subsampling=draw(st.sampled_from([0, 1, 2])), exif=exif)
    return buffer.getvalue(), draw(st.one_of(st.none(), st.integers(8, 64)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=photos())
def test_the_fast_path_turns_and_decodes_as_pillow_does(case, monkeypatch):
    data, target_size = case
    decoded = []
    with monkeypatch.context() as patch:
        real = jpeg.decode_rgb
        patch.setattr(jpeg, "decode_rgb", lambda *args, **kwargs: decoded.append(1) or real(*args, **kwargs))
        fast = load_pixels(data, target_size=target_size)
    assert decoded, "the fast path did not run: the comparison would be Pillow against itself"
    with monkeypatch.context() as patch:
        patch.setattr(jpeg, "jpeg_size", lambda _data: None)  # the fast path steps aside: Pillow decodes
        pillow = load_pixels(data, target_size=target_size)
    assert fast.full_size == pillow.full_size
    assert fast.array.shape == pillow.array.shape
    assert np.array_equal(fast.array, pillow.array)


def test_a_square_reduced_decode_of_a_turned_photo_reports_the_turned_full_size(monkeypatch):
    """Found by the differential test: Pillow's path guessed the turn by comparing sizes, which a square reduced
    decode (57x57 of a 113x114 photo) cannot show, and reported the full size unturned."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90: the stored 113 x 114 (w x h) photo shows as 114 x 113
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((114, 113, 3), dtype=np.uint8)).save(buffer, "JPEG", exif=exif)
    monkeypatch.setattr(jpeg, "jpeg_size", lambda _data: None)  # Pillow decodes
    pixels = load_pixels(buffer.getvalue(), target_size=32)
    assert pixels.array.shape[:2] == (57, 57) and pixels.full_size == (114, 113)
