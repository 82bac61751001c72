"""The published JSON Schema of manifest.json: generated from the dataclasses, and what export writes obeys it."""

from __future__ import annotations

import json

import pytest

from edge_clipguard.bundle import SCHEMA_VERSION
from edge_clipguard.manifest_schema import manifest_json_schema, schema_path, schema_text

jsonschema = pytest.importorskip("jsonschema")


def test_the_published_schema_is_the_generated_one():
    assert schema_path().name == f"manifest-v{SCHEMA_VERSION}.schema.json"
    assert schema_path().read_text() == schema_text(), "run: python -m edge_clipguard.manifest_schema"


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(manifest_json_schema())


def test_an_exported_int8_bundle_obeys_the_schema(tiny_int8_bundle):
    manifest = json.loads((tiny_int8_bundle.bundle / "manifest.json").read_text())
    jsonschema.validate(manifest, manifest_json_schema())


@pytest.mark.parametrize(("path", "value"), [(("artifacts", 0, "precision"), "int4"),
                                             (("inputs", 0, "shape"), ["batch", "tokens"]),
                                             (("schema_version",), 1), (("preprocess", "surprise"), 1),
                                             (("top_k",), "8")])
def test_a_manifest_off_the_contract_fails_the_schema(tiny_bundle, path, value):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, manifest_json_schema())
