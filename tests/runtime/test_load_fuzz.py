"""Fuzzing Predictor.load on mutated bundles: a changed manifest field, or a changed file whose new sha256 the
manifest records (so the bytes reach the tokenizer and the backend's parser). Whatever the bundle holds, the load
and a first prediction either work or raise one ClipGuardError of one line, never another exception."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime import Predictor

IMAGE = np.zeros((24, 40, 3), dtype=np.uint8)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=8), st.sampled_from(["batch", "text_length", "fp16", "tensorrt-engine", "../x"]),
                   st.lists(st.integers(-1, 70), max_size=4), st.just({}), st.just([]))
FIELDS = [("schema_version",), ("top_k",), ("class_names",), ("score_range",), ("inputs",), ("outputs",),
          ("files",), ("artifacts",), ("preprocess",), ("preprocess", "image_size"), ("preprocess", "max_text_length"),
          ("preprocess", "text_lengths"), ("preprocess", "mean"), ("preprocess", "letterbox_fill"),
          ("preprocess", "resize"), ("preprocess", "tokenizer_file"), ("artifacts", 0, "precision"),
          ("artifacts", 0, "kind"), ("artifacts", 0, "target"), ("artifacts", 0, "details"),
          ("inputs", 0, "shape"), ("inputs", 1, "dtype"), ("outputs", 1, "shape")]


@st.composite
def mutations(draw) -> dict:
    if draw(st.booleans()):
        return {"field": draw(st.sampled_from(FIELDS)), "value": draw(VALUES), "drop": draw(st.booleans())}
    return {"file": draw(st.sampled_from(["tokenizer.json", "model.fp32.onnx"])),
            "op": draw(st.sampled_from(["truncate", "flip", "garbage"])), "at": draw(st.floats(0, 1)),
            "backend": draw(st.sampled_from(["onnxruntime", "openvino"]))}


@pytest.fixture(scope="module")
def pristine(tiny_bundle, tmp_path_factory):
    return tiny_bundle


def _apply(bundle, mutation: dict) -> str:
    """Mutate the bundle copy in place; returns the backend to load it with."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    if "field" in mutation:
        target = manifest
        path = mutation["field"]
        for key in path[:-1]:
            target = target[key]
        if mutation["drop"]:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = mutation["value"]
    else:
        path = bundle / mutation["file"]
        data = bytearray(path.read_bytes())
        at = int(mutation["at"] * (len(data) - 1))
        if mutation["op"] == "truncate":
            data = data[:at]
        elif mutation["op"] == "flip":
            data[at] ^= 0xFF
        else:
            data = bytearray(hashlib.sha256(bytes(data[:at])).digest() * 7)
        path.write_bytes(bytes(data))
        manifest["files"][mutation["file"]] = hashlib.sha256(bytes(data)).hexdigest()  # the check passes
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return mutation.get("backend", "onnxruntime")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=mutations())
@example(mutation={"file": "model.fp32.onnx", "op": "flip", "at": 0.5, "backend": "openvino"})
@example(mutation={"file": "tokenizer.json", "op": "truncate", "at": 0.5, "backend": "onnxruntime"})
@example(mutation={"field": ("preprocess", "text_lengths"), "value": [8, 70], "drop": False})
def test_a_mutated_bundle_loads_or_fails_with_one_clipguard_line(pristine, tmp_path, mutation):
    if mutation.get("backend") == "openvino":
        pytest.importorskip("openvino")
    bundle = tmp_path / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(pristine, bundle)
    backend = _apply(bundle, mutation)
    try:
        with Predictor.load(bundle, backend=backend, device="cpu", threads=1, compile_cache=False) as predictor:
            predictor.predict("a red star", IMAGE)
    except ClipGuardError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
