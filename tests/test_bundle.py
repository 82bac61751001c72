"""The bundle contract: names defined once, precision lists parsed once, the manifest written atomically."""

from __future__ import annotations

import json
import re

import pytest

from edge_clipguard.bundle import (
    BundleError,
    EngineFacts,
    manifest_from_dict,
    parse_precisions,
    read_manifest,
    verify_file,
    write_manifest,
)


def test_precision_list_keeps_order_and_drops_repeats():
    assert parse_precisions("int8, fp16,int8") == ("int8", "fp16")


@pytest.mark.parametrize("text", [None, "", "all"])
def test_empty_or_all_precision_list_means_the_default(text):
    assert parse_precisions(text) == ()


def test_unknown_precision_is_refused_naming_it():
    with pytest.raises(BundleError, match="'bf16'"):
        parse_precisions("int8,bf16")


def test_manifest_rewrite_leaves_no_temporary_file(tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    manifest = read_manifest(bundle)
    write_manifest(bundle, manifest)
    assert json.loads((bundle / "manifest.json").read_text())["files"] == manifest.files
    assert not [p.name for p in bundle.iterdir() if p.name.startswith(".")]


def _manifest_dict(tiny_bundle) -> dict:
    return json.loads((tiny_bundle / "manifest.json").read_text())


OUTSIDE_NAMES = ["/etc/passwd", "../outside.onnx", "sub/../../x.onnx", "..\\x.onnx", "C:x.onnx", "./model.onnx", ""]


@pytest.mark.parametrize("name", OUTSIDE_NAMES)
def test_artifact_file_outside_the_bundle_is_refused_when_parsed(tiny_bundle, name):
    data = _manifest_dict(tiny_bundle)
    data["artifacts"][0]["file"] = name
    with pytest.raises(BundleError, match=r"artifacts\[0\]\.file: file name .* not a plain relative path|non-empty"):
        manifest_from_dict(data)


def test_tokenizer_file_outside_the_bundle_is_refused_when_parsed(tiny_bundle):
    data = _manifest_dict(tiny_bundle)
    data["preprocess"]["tokenizer_file"] = "../../tokenizer.json"
    with pytest.raises(BundleError, match=r"preprocess\.tokenizer_file: file name '\.\./\.\./tokenizer\.json'"):
        manifest_from_dict(data)


def test_hashed_file_outside_the_bundle_is_refused_when_parsed(tiny_bundle):
    data = _manifest_dict(tiny_bundle)
    data["files"]["/etc/passwd"] = "0" * 64
    with pytest.raises(BundleError, match=r"files: file name '/etc/passwd'"):
        manifest_from_dict(data)


def test_name_outside_the_bundle_is_refused_again_before_opening(tiny_bundle, monkeypatch):
    """A Manifest built in code skips the parser; verify_file checks the name itself, reading nothing."""
    from dataclasses import replace

    import edge_clipguard.bundle as bundle

    monkeypatch.setattr(bundle, "sha256_file", lambda path: pytest.fail(f"read {path}"))
    manifest = read_manifest(tiny_bundle)
    manifest = replace(manifest, files={**manifest.files, "../manifest.json": "0" * 64})
    with pytest.raises(BundleError, match="not a plain relative path inside the bundle"):
        verify_file(tiny_bundle, manifest, "../manifest.json")


def test_symlink_leaving_the_bundle_is_refused_before_a_byte_is_read(tiny_bundle, tmp_path, monkeypatch):
    import shutil

    import edge_clipguard.bundle as bundle

    copy = shutil.copytree(tiny_bundle, tmp_path / "b")
    outside = shutil.copy(copy / "model.fp32.onnx", tmp_path / "elsewhere.onnx")  # same bytes, same sha256
    (copy / "model.fp32.onnx").unlink()
    (copy / "model.fp32.onnx").symlink_to(outside)
    monkeypatch.setattr(bundle, "sha256_file", lambda path: pytest.fail(f"read {path}"))
    with pytest.raises(BundleError, match=r"model\.fp32\.onnx: resolves to .*elsewhere\.onnx, outside the bundle"):
        verify_file(copy, read_manifest(copy), "model.fp32.onnx")


def test_symlink_within_the_bundle_is_accepted(tiny_bundle, tmp_path):
    import shutil

    copy = shutil.copytree(tiny_bundle, tmp_path / "b")
    (copy / "store").mkdir()
    (copy / "model.fp32.onnx").rename(copy / "store" / "model.fp32.onnx")
    (copy / "model.fp32.onnx").symlink_to(copy / "store" / "model.fp32.onnx")
    assert verify_file(copy, read_manifest(copy), "model.fp32.onnx") == copy / "model.fp32.onnx"


def test_predictor_refuses_a_bundle_naming_an_outside_file(tiny_bundle, tmp_path):
    import shutil

    from edge_clipguard.runtime import Predictor

    copy = shutil.copytree(tiny_bundle, tmp_path / "b")
    data = _manifest_dict(copy)
    data["preprocess"]["tokenizer_file"] = "/etc/passwd"
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"manifest\.json: preprocess\.tokenizer_file: file name '/etc/passwd'"):
        Predictor.load(copy, backend="onnxruntime", device="cpu")


def test_a_manifest_without_a_resize_method_is_read_as_pillows(tiny_bundle):
    # Bundles exported before the field existed were trained on Pillow's resize.
    data = _manifest_dict(tiny_bundle)
    data["preprocess"].pop("resize", None)
    assert manifest_from_dict(data).preprocess.resize == "pillow-bilinear"


def test_a_new_manifest_records_the_resize_method_of_its_model(tiny_bundle):
    assert _manifest_dict(tiny_bundle)["preprocess"]["resize"] == "opencv"


def test_an_unknown_resize_method_in_a_manifest_is_refused_naming_the_field(tiny_bundle):
    data = _manifest_dict(tiny_bundle)
    data["preprocess"]["resize"] = "bicubic"
    with pytest.raises(BundleError, match=r"preprocess\.resize' is 'bicubic'"):
        manifest_from_dict(data)


MEANINGLESS = {
    "top_k": (("top_k",), 0),
    "preprocess.mean/std": (("preprocess", "std"), [0.5, 0.0, 0.5]),
    "preprocess.letterbox_fill": (("preprocess", "letterbox_fill"), [300, 0, 0]),
    "score_range": (("score_range",), [10.0, 0.0]),
    "class_names": (("class_names",), []),
    "artifacts[0].kind": (("artifacts", 0, "kind"), "zip"),
    "artifacts[0].precision": (("artifacts", 0, "precision"), "int4"),
    "artifacts[0].target": (("artifacts", 0, "target"), "gpu"),
    "artifacts[0].quant_format": (("artifacts", 0, "quant_format"), "qdq-u4"),
    "artifacts[0].file": (("artifacts", 0, "file"), "model.other.onnx"),
    "inputs": (("inputs", 0, "dtype"), "float64"),
    "outputs": (("outputs", 1, "shape"), ["batch", 8, 5]),
    "files['tokenizer.json']": (("files", "tokenizer.json"), "not-a-digest"),
}


@pytest.mark.parametrize("field_name", sorted(MEANINGLESS))
def test_a_value_without_meaning_is_refused_naming_its_field(tiny_bundle, field_name):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    path, value = MEANINGLESS[field_name]
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(BundleError, match=re.escape(f"field {field_name!r}")):
        manifest_from_dict(data)


def test_inputs_in_another_order_are_refused(tiny_bundle):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["inputs"] = data["inputs"][::-1]
    with pytest.raises(BundleError, match="field 'inputs' .* expected the contract's"):
        manifest_from_dict(data)


def test_pixel_values_must_match_the_image_size(tiny_bundle):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["preprocess"]["image_size"] = 96
    with pytest.raises(BundleError, match="field 'inputs'"):
        manifest_from_dict(data)


def _with_engine(tiny_bundle, details: dict) -> dict:
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["artifacts"].append({"file": "model.fp32.plan", "kind": "tensorrt-engine", "precision": "fp32",
                              "target": "tensorrt", "quant_format": None, "details": details})
    data["files"]["model.fp32.plan"] = "ab" * 32
    return data


def test_engine_facts_are_typed(tiny_bundle):
    details = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "gpu_name": "Orin",
               "batch": {"min": 1, "opt": 2, "max": 8}, "text_length": {"min": 8, "opt": 16, "max": 16}}
    manifest = manifest_from_dict(_with_engine(tiny_bundle, details))
    facts = manifest.artifact("model.fp32.plan").engine_facts()
    assert facts == EngineFacts("10.3.0", "8.7", "Orin", (1, 2, 8), (8, 16, 16))


@pytest.mark.parametrize(("details", "message"), [
    ({"tensorrt_version": "10.3.0", "compute_capability": 87}, "compute_capability like"),
    ({"tensorrt_version": "10.3.0", "compute_capability": "8.7", "batch": {"min": 4, "opt": 2, "max": 8}},
     r"model.fp32.plan.batch: expected integers 1 <= min <= opt <= max"),
    ({"tensorrt_version": "10.3.0", "compute_capability": "8.7", "text_length": [8, 16, 64]},
     r"model.fp32.plan.text_length: expected"),
])
def test_malformed_engine_facts_are_refused_when_parsed(tiny_bundle, details, message):
    with pytest.raises(BundleError, match=message):
        manifest_from_dict(_with_engine(tiny_bundle, details))
