"""The bundle contract: names defined once, precision lists parsed once, the manifest written atomically."""

from __future__ import annotations

import json

import pytest

from edge_clipguard.bundle import BundleError, parse_precisions, read_manifest, write_manifest


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
