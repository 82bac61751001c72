"""Fuzzing the bundle-manifest reader: whatever manifest.json holds, only BundleError (a ClipGuardError) escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_clipguard.bundle import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    Manifest,
    Preprocess,
    TensorSpec,
    manifest_from_dict,
    read_manifest,
)
from edge_clipguard.errors import ClipGuardError

FUZZ = settings(max_examples=200, deadline=None)
VALID = Manifest(
    schema_version=SCHEMA_VERSION, package_version="0.1.0", config_name="tiny", class_names=("circle", "star"),
    score_range=(0.0, 10.0), top_k=8,
    inputs=(TensorSpec("input_ids", "int64", ("batch", "text_length")),
            TensorSpec("attention_mask", "int64", ("batch", "text_length")),
            TensorSpec("pixel_values", "float32", ("batch", 3, 64, 64))),
    outputs=(TensorSpec("score", "float32", ("batch",)), TensorSpec("boxes", "float32", ("batch", 8, 4)),
             TensorSpec("confidences", "float32", ("batch", 8)), TensorSpec("labels", "int64", ("batch", 8))),
    preprocess=Preprocess(image_size=64, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), letterbox_fill=(114, 114, 114),
                          max_text_length=16),
    artifacts=(Artifact("model.fp32.onnx", "onnx", "fp32"),), files={"model.fp32.onnx": "ab" * 32},
    versions={"onnx": "1.17"},
).to_dict()
NASTY = st.sampled_from([10**400, float("inf"), float("nan"), -1, "", "\x00", None, True, [], {}, [[]], [{}], "1"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | NASTY,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
PATHS = [(key,) for key in VALID] + [("preprocess", key) for key in VALID["preprocess"]] + [
    ("artifacts", 0, key) for key in VALID["artifacts"][0]] + [("inputs", 0, key) for key in ("name", "dtype", "shape")]


def _set(data, path, value):
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@st.composite
def manifests(draw):
    """The valid manifest with a few fields (top-level or nested) replaced by arbitrary JSON, or dropped."""
    data = json.loads(json.dumps(VALID))
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=3, unique=True)):
        try:
            if draw(st.booleans()):
                _set(data, path, draw(JSON))
            else:
                target = data
                for key in path[:-1]:
                    target = target[key]
                del target[path[-1]]
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced the parent
    return draw(st.one_of(st.just(data), JSON))


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bundle_fuzz")


def test_the_unfuzzed_manifest_is_valid():
    assert manifest_from_dict(json.loads(json.dumps(VALID))).top_k == 8


@FUZZ
@given(data=manifests())
@example(data={**VALID, "files": ["model.fp32.onnx"]})
@example(data={**VALID, "top_k": float("inf")})
@example(data={**VALID, "preprocess": {**VALID["preprocess"], "image_size": 10**400}})
def test_manifest_from_dict_raises_only_bundle_errors(data):
    try:
        manifest = manifest_from_dict(data)
    except ClipGuardError:
        return
    assert isinstance(manifest, Manifest)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), manifests().map(lambda d: json.dumps(d).encode())))
@example(raw=b"[" * 100_000)
@example(raw=b"\xff\xfe{}")
def test_read_manifest_raises_only_bundle_errors(raw, bundle_dir):
    (bundle_dir / MANIFEST_NAME).write_bytes(raw)
    try:
        manifest = read_manifest(bundle_dir)
    except ClipGuardError:
        return
    assert isinstance(manifest, Manifest)
