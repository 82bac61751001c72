"""The bundle contract: names defined once, precision lists parsed once, the manifest written atomically."""

from __future__ import annotations

import json

import pytest

from edge_clipguard.bundle import (
    BundleError,
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
