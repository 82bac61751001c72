"""The JSON Schema of ``manifest.json``, generated from the manifest dataclasses (``bundle``), so it cannot drift.

Device apps in other languages read a bundle's manifest with it instead of guessing. The schema is versioned
with ``bundle.SCHEMA_VERSION`` and published as ``edge_clipguard/schemas/manifest-v{N}.schema.json``
(``python -m edge_clipguard.manifest_schema`` rewrites it; a test checks the committed file equals the
generated one, and every manifest the tests write validates against it). It states the structure and the
enumerations; ``bundle.check_meaning`` adds what a JSON Schema cannot say (pixel_values' size follows
image_size, outputs follow top_k, every artifact is hashed).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from .bundle import (
    BUNDLE_FORMAT,
    DTYPES,
    KINDS,
    PRECISIONS,
    QUANT_FORMATS,
    SCHEMA_VERSION,
    TARGETS,
    Artifact,
    ArtifactParts,
    Manifest,
    Preprocess,
    TensorSpec,
)
from .contract import BATCH_AXIS, RESIZE_METHODS, TEXT_AXIS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# Values a field may take, where its Python type alone (str, int) says too little.
ENUMS: dict[tuple[type, str], dict[str, Any]] = {
    (Manifest, "schema_version"): {"const": SCHEMA_VERSION},
    (Manifest, "format"): {"const": BUNDLE_FORMAT},
    (Artifact, "kind"): {"enum": list(KINDS)},
    (Artifact, "precision"): {"enum": list(PRECISIONS)},
    (Artifact, "target"): {"enum": list(TARGETS)},
    (Artifact, "quant_format"): {"enum": [*QUANT_FORMATS, None]},
    (TensorSpec, "dtype"): {"enum": list(DTYPES)},
    (TensorSpec, "shape"): {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1},
                                                                 {"enum": [BATCH_AXIS, TEXT_AXIS]}]}},
    (Preprocess, "resize"): {"enum": list(RESIZE_METHODS)},
}
DESCRIPTIONS = {
    Manifest: "manifest.json of an edge-clipguard bundle: the one contract between export and the runtime",
    TensorSpec: "a graph input or output; shape entries are sizes or the symbolic axes 'batch' and 'text_length'",
    Preprocess: "what the runtime does to text and image before the graph sees them",
    Artifact: "one model file of the bundle (ONNX graph or TensorRT plan)",
    ArtifactParts: ("the artifact's graph cut in two at text_features: a text graph and a fusion graph (ONNX files, "
                    "or TensorRT plans built from them)"),
}


def schema_path(version: int = SCHEMA_VERSION) -> Path:
    return SCHEMA_DIR / f"manifest-v{version}.schema.json"


def manifest_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the manifest export writes at SCHEMA_VERSION."""
    defs: dict[str, Any] = {}
    root = _object(Manifest, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"edge-clipguard bundle manifest, schema_version {SCHEMA_VERSION}", **root, "$defs": defs}


def _object(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        properties[f.name] = ENUMS.get((cls, f.name)) or _type(hints[f.name], defs)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return {"type": "object", "description": DESCRIPTIONS.get(cls, cls.__doc__ or cls.__name__),
            "properties": properties, "required": required, "additionalProperties": False}


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if hint.__name__ not in defs:
            defs[hint.__name__] = _object(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type(a, defs) for a in args]}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type(args[0], defs)}
        return {"type": "array", "prefixItems": [_type(a, defs) for a in args], "minItems": len(args),
                "maxItems": len(args)}
    if origin is dict:
        value = args[1] if args else Any
        return {"type": "object"} if value is Any else {"type": "object", "additionalProperties": _type(value, defs)}
    simple = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"},
              bool: {"type": "boolean"}, type(None): {"type": "null"}}
    if hint in simple:
        return simple[hint]
    raise TypeError(f"no JSON Schema for {hint!r}")


def schema_text() -> str:
    return json.dumps(manifest_json_schema(), indent=2) + "\n"


if __name__ == "__main__":  # python -m edge_clipguard.manifest_schema: rewrite the published schema
    from .atomic import write_text_atomic

    print(write_text_atomic(schema_path(), schema_text()))
    sys.exit(0)
