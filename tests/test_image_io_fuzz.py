"""Fuzzing the image reader: random bytes, cut or bit-flipped real files (as paths and as bytes, with and without the
reduced-scale JPEG decode), and random arrays give an RGB image or an ImageError (a ClipGuardError), nothing else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from edge_clipguard.errors import ClipGuardError
from edge_clipguard.image_io import load_image

FUZZ = settings(max_examples=150, deadline=None)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
MAX_PIXELS = 1 << 20  # keeps a header claiming a huge image from being decoded in full


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


REAL = {fmt: _encoded(fmt) for fmt in FORMATS}


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    return tmp_path_factory.mktemp("image_fuzz") / "input.img"


TARGETS = st.sampled_from([None, 8, 64])  # 8: the 31 px test JPEG takes the draft() (reduced-scale) path


def _load(source, target_size=None):
    try:
        image = load_image(source, max_pixels=MAX_PIXELS, target_size=target_size)
    except ClipGuardError:
        return None
    assert image.mode == "RGB" and image.width > 0 and image.height > 0
    return image


def test_the_unfuzzed_files_load(image_file):
    for data in REAL.values():
        image_file.write_bytes(data)
        assert _load(image_file).size == (31, 23)
        assert _load(data).size == (31, 23)


def _load_as(data: bytes, as_path: bool, target_size, image_file):
    if as_path:
        image_file.write_bytes(data)
        return _load(image_file, target_size)
    return _load(data, target_size)


@FUZZ
@given(data=st.binary(max_size=4096), as_path=st.booleans(), target_size=TARGETS)
def test_random_bytes_raise_only_image_errors(data, as_path, target_size, image_file):
    _load_as(data, as_path, target_size, image_file)


@FUZZ
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about some damaged TIFF tags, then reads on
@given(fmt=st.sampled_from(FORMATS), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4), as_path=st.booleans(),
       target_size=TARGETS)
def test_cut_or_corrupted_real_files_raise_only_image_errors(fmt, cut, flips, as_path, target_size, image_file):
    data = bytearray(REAL[fmt][: max(1, int(len(REAL[fmt]) * cut))])
    for where, mask in flips:
        data[min(len(data) - 1, int(len(data) * where))] ^= mask
    _load_as(bytes(data), as_path, target_size, image_file)


@FUZZ
@given(array=hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.int8, np.float32, np.float64, np.bool_]),
                        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)))
def test_random_arrays_raise_only_image_errors(array):
    image = _load(array)
    if image is not None:
        assert image.size == (array.shape[1], array.shape[0])
