"""The bundle manifest: the one contract between export and the runtime (no torch here).

A bundle is a directory holding ``manifest.json``, ``tokenizer.json`` and one or more model
artifacts (ONNX files, TensorRT plan files). The manifest says how to feed the graphs
(tensor names, dtypes, shapes, preprocessing constants), what comes out (class names,
score range), what each artifact is (precision, quantization format, intended backend) and
the sha256 of every file, so a loader can refuse a tampered or mismatched bundle.

Schema version history:
  1 — first release: every graph input fixed but the batch (text padded to ``max_text_length``).
  2 — the text axis of ``input_ids``/``attention_mask`` is symbolic (``text_length``) and
      ``preprocess.text_lengths`` lists the lengths the runtime pads a batch to. A version-1 manifest still
      loads: it reads as ``text_lengths = [max_text_length]``.
  3 — an ONNX artifact may also come cut in two at the text features (``parts``: a text graph and a fusion
      graph, ``text_features`` gives the tensor between them), so a runtime encodes each text once and keeps
      its features. The whole graph stays in ``file``; versions 1 and 2 still load (no parts).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .atomic import write_text_atomic
from .contract import (
    ATTENTION_MASK,
    BATCH_AXIS,
    BOXES,
    CONFIDENCES,
    DEFAULT_RESIZE,
    FUSION_PART_INPUTS,
    INPUT_IDS,
    LABELS,
    LEGACY_RESIZE,
    PIXEL_VALUES,
    RESIZE_METHODS,
    SCORE,
    TEXT_AXIS,
    TEXT_FEATURES,
    TEXT_PART_INPUTS,
)
from .errors import ClipGuardError

SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
MANIFEST_NAME = "manifest.json"
TOKENIZER_NAME = "tokenizer.json"
BUNDLE_FORMAT = "edge-clipguard-bundle"

# Artifact files export writes and the runtime looks for (engines: ``engine_file_name``).
FP32_ONNX = "model.fp32.onnx"
FP16_ONNX = "model.fp16.onnx"
INT8_ONNX = "model.int8.onnx"  # explicit Q/DQ, S8S8: the TensorRT recipe
INT8_CPU_ONNX = "model.int8-cpu.onnx"  # U8S8, Conv/MatMul/Gemm only: ONNX Runtime's CPU kernels

# Artifact kinds.
ONNX = "onnx"
ENGINE = "tensorrt-engine"
# Artifact targets: which backend a file is meant for.
TARGET_ANY = "any"
TARGET_TENSORRT = "tensorrt"
TARGET_ORT_CPU = "onnxruntime-cpu"
TARGETS = (TARGET_ANY, TARGET_TENSORRT, TARGET_ORT_CPU)
# Precisions, best-for-speed last, and INT8 quantization formats.
PRECISIONS = ("fp32", "fp16", "int8")
QUANT_S8S8 = "qdq-s8s8"
QUANT_U8S8 = "qdq-u8s8"
QUANT_FORMATS = (QUANT_S8S8, QUANT_U8S8)
KINDS = (ONNX, ENGINE)
DTYPES = ("int64", "int32", "float32", "float16", "uint8")
_CC = re.compile(r"\d+\.\d+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def engine_file_name(precision: str) -> str:
    """A TensorRT plan file name: plain plan files, so trtexec and Triton read them as they are."""
    return f"model.{precision}.plan"


def engine_parts(precision: str) -> ArtifactParts:
    """The plan files of an engine built from an ONNX artifact's two parts (``model.int8.text.plan``, ...)."""
    return ArtifactParts(text=f"model.{precision}.text.plan", fusion=f"model.{precision}.fusion.plan")


def parse_precisions(text: str | None, flag: str = "--precision") -> tuple[str, ...]:
    """"int8, fp16,int8" -> ("int8", "fp16"); None, "" or "all" -> () (the caller's default)."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if parts in ([], ["all"]):
        return ()
    values: list[str] = []
    for part in parts:
        if part not in PRECISIONS:
            raise BundleError(f"{flag}: expected all or a comma list of {', '.join(PRECISIONS)}, got {part!r}")
        if part not in values:
            values.append(part)
    return tuple(values)


class BundleError(ClipGuardError):
    """A bundle directory or its manifest is missing, malformed or of another schema version."""


class IntegrityError(BundleError):
    """A bundle file's sha256 differs from the one its manifest recorded (tampered or truncated)."""


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. ``shape`` entries are ints or a symbolic name such as "batch"."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class Preprocess:
    """What the runtime must do to text and image before the graph sees them."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    letterbox_fill: tuple[int, int, int]
    max_text_length: int
    tokenizer_file: str = TOKENIZER_NAME
    resize: str = DEFAULT_RESIZE  # the letterbox's resize method; LEGACY_RESIZE when a manifest lacks it
    # Text lengths a batch is padded to (ascending, the last is max_text_length): the smallest that holds the
    # batch's longest text. Not given (a schema-1 manifest, whose text axis is fixed): (max_text_length,).
    text_lengths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.text_lengths:
            object.__setattr__(self, "text_lengths", (self.max_text_length,))


@dataclass(frozen=True)
class ArtifactParts:
    """An ONNX artifact cut in two at ``text_features`` (see ``contract``): ``text`` maps input_ids and
    attention_mask to text_features; ``fusion`` maps text_features, attention_mask and pixel_values to the
    outputs. Run one after the other they compute what the whole graph computes (export checks it)."""

    text: str
    fusion: str


@dataclass(frozen=True)
class Artifact:
    """One model file of the bundle.

    kind: "onnx" or "tensorrt-engine". precision: "fp32", "fp16" or "int8".
    target: which backend it is meant for: "any", "tensorrt" or "onnxruntime-cpu".
    quant_format: for INT8, e.g. "qdq-s8s8" (TensorRT-style) or "qdq-u8s8" (ORT-CPU-tuned).
    details: free-form facts (opset, validation errors, TensorRT version, compute capability, ...).
    parts: the same graph cut in two files at the text features (schema 3), or None.
    """

    file: str
    kind: str
    precision: str
    target: str = "any"
    quant_format: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    parts: ArtifactParts | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        parts = data.get("parts")
        return cls(**{**data, "parts": None if parts is None else ArtifactParts(**parts)})

    def member_files(self) -> tuple[str, ...]:
        """Every bundle file this artifact is: the whole graph and, when cut, its two parts."""
        return (self.file,) if self.parts is None else (self.file, self.parts.text, self.parts.fusion)

    def engine_facts(self) -> EngineFacts | None:
        """A TensorRT engine's typed facts (version, compute capability, profiles); None for ONNX files."""
        return EngineFacts.from_details(self.details, f"artifact {self.file}") if self.kind == ENGINE else None


@dataclass(frozen=True)
class EngineFacts:
    """What a TensorRT plan is specific to and was built for, as the manifest records it (artifact ``details``):
    the runtime refuses a plan of another TensorRT release or GPU architecture, and never feeds it a batch or a
    text length outside its optimization profile. Ranges are (min, opt, max)."""

    tensorrt_version: str
    compute_capability: str
    gpu_name: str = ""
    batch: tuple[int, int, int] | None = None
    text_length: tuple[int, int, int] | None = None

    @classmethod
    def from_details(cls, details: dict[str, Any], where: str) -> EngineFacts | None:
        """The facts in an engine artifact's ``details``; None when it records no TensorRT version (such a plan
        is refused at load, naming what is missing). BundleError when a recorded fact is malformed."""
        if "tensorrt_version" not in details:
            return None
        version, cc = details.get("tensorrt_version"), details.get("compute_capability")
        if not isinstance(version, str) or not version or not isinstance(cc, str) or not _CC.fullmatch(cc):
            raise BundleError(f"{where}: expected a tensorrt_version string and a compute_capability like "
                              f"\"8.7\", got {version!r} and {cc!r}")
        return cls(version, cc, str(details.get("gpu_name", "")), _range(details.get("batch"), f"{where}.batch"),
                   _range(details.get("text_length"), f"{where}.text_length"))


def _range(value: Any, where: str) -> tuple[int, int, int] | None:
    """A recorded {"min", "opt", "max"} profile as a tuple, checked 1 <= min <= opt <= max; None if absent."""
    if value is None:
        return None
    try:
        low, opt, high = (value[k] for k in ("min", "opt", "max"))
    except (KeyError, TypeError):
        raise BundleError(f"{where}: expected {{\"min\", \"opt\", \"max\"}}, got {value!r}") from None
    if not all(type(v) is int for v in (low, opt, high)) or not 1 <= low <= opt <= high:
        raise BundleError(f"{where}: expected integers 1 <= min <= opt <= max, got {value!r}")
    return low, opt, high


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    package_version: str
    config_name: str
    class_names: tuple[str, ...]
    score_range: tuple[float, float]
    top_k: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    preprocess: Preprocess
    artifacts: tuple[Artifact, ...]
    files: dict[str, str]
    versions: dict[str, str] = field(default_factory=dict)
    format: str = BUNDLE_FORMAT
    # The tensor between an artifact's parts: float32 [batch, text_length, feature_dim]; None when none is cut.
    text_features: TensorSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def artifact(self, file: str) -> Artifact:
        for art in self.artifacts:
            if art.file == file:
                return art
        raise BundleError(f"{MANIFEST_NAME}: no artifact named {file!r} (have: {[a.file for a in self.artifacts]})")

    def part_inputs(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """Input specs of an artifact's text part and fusion part (``contract.TEXT_PART_INPUTS``, ``FUSION_...``)."""
        if self.text_features is None:
            raise BundleError(f"{MANIFEST_NAME}: no 'text_features': this bundle's graphs are not cut in two")
        specs = {spec.name: spec for spec in (*self.inputs, self.text_features)}
        return tuple(specs[n] for n in TEXT_PART_INPUTS), tuple(specs[n] for n in FUSION_PART_INPUTS)

    def find(self, *, kind: str, precision: str | None = None, target: str | None = None) -> list[Artifact]:
        """Artifacts of ``kind``, optionally filtered by precision and target."""
        return [a for a in self.artifacts if a.kind == kind
                and (precision is None or a.precision == precision)
                and (target is None or a.target == target)]


def check_member_name(name: object, where: str) -> str:
    """``name`` if it is a plain relative path inside the bundle, else BundleError.

    A manifest is data from wherever the bundle came from; a name such as ``/etc/passwd``,
    ``../../x`` or ``C:\\x`` would make the runtime hash and load a file outside the bundle.
    Allowed: ``/``-separated components, none empty, ``.`` or ``..``, no backslash, colon or NUL."""
    if not isinstance(name, str) or not name:
        raise BundleError(f"{where}: file name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if any(bad in name for bad in ("\\", ":", "\0")) or any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"{where}: file name {name!r} is not a plain relative path inside the bundle")
    return str(PurePosixPath(*parts))


def contained_path(bundle_dir: str | Path, name: str, where: str) -> Path:
    """``bundle_dir / name`` once the name is plain and, with symlinks resolved, still inside the bundle."""
    path = Path(bundle_dir) / check_member_name(name, where)
    root, target = Path(bundle_dir).resolve(), path.resolve()
    if not target.is_relative_to(root):
        raise BundleError(f"{path}: resolves to {target}, outside the bundle {root}")
    return path


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _require(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise BundleError(f"{where}: missing field {key!r}")
    return data[key]


def _resize_method(pre: dict[str, Any], where: str) -> str:
    method = pre.get("resize", LEGACY_RESIZE)
    if method not in RESIZE_METHODS:
        raise BundleError(f"{where}: field 'preprocess.resize' is {method!r}, expected one of {list(RESIZE_METHODS)}")
    return method


def _text_lengths(pre: dict[str, Any], where: str) -> tuple[int, ...]:
    longest = int(pre["max_text_length"])
    lengths = pre.get("text_lengths", [longest])
    if (not isinstance(lengths, list) or not lengths or not all(type(n) is int and n > 0 for n in lengths)
            or list(lengths) != sorted(set(lengths)) or lengths[-1] != longest):
        raise BundleError(f"{where}: field 'preprocess.text_lengths' is {lengths!r}, expected ascending positive "
                          f"integers ending with max_text_length {longest}")
    return tuple(lengths)


def _spec(data: dict[str, Any] | None) -> TensorSpec | None:
    return None if data is None else TensorSpec(data["name"], data["dtype"], tuple(data["shape"]))


def manifest_from_dict(data: dict[str, Any], where: str = MANIFEST_NAME) -> Manifest:
    """Parse and check a manifest dict; raises BundleError naming the bad field."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
        raise BundleError(f"{where}: field 'format' is {data.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    version = _require(data, "schema_version", where)
    if version not in READABLE_SCHEMA_VERSIONS:
        raise BundleError(
            f"{where}: schema_version {version!r} is not supported by this runtime (reads "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}); re-export the bundle with the matching edge-clipguard "
            "version"
        )
    try:
        pre = dict(_require(data, "preprocess", where))
        manifest = Manifest(
            schema_version=version,
            package_version=str(_require(data, "package_version", where)),
            config_name=str(_require(data, "config_name", where)),
            class_names=tuple(str(c) for c in _require(data, "class_names", where)),
            score_range=tuple(float(v) for v in _require(data, "score_range", where)),
            top_k=int(_require(data, "top_k", where)),
            inputs=tuple(TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in _require(data, "inputs", where)),
            outputs=tuple(
                TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in _require(data, "outputs", where)
            ),
            preprocess=Preprocess(
                image_size=int(pre["image_size"]),
                mean=tuple(float(v) for v in pre["mean"]),
                std=tuple(float(v) for v in pre["std"]),
                letterbox_fill=tuple(int(v) for v in pre["letterbox_fill"]),
                max_text_length=int(pre["max_text_length"]),
                tokenizer_file=str(pre.get("tokenizer_file", TOKENIZER_NAME)),
                resize=_resize_method(pre, where),
                text_lengths=_text_lengths(pre, where),
            ),
            artifacts=tuple(Artifact.from_dict(a) for a in _require(data, "artifacts", where)),
            files={str(k): str(v) for k, v in _require(data, "files", where).items()},
            versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
            text_features=_spec(data.get("text_features")),
        )
        _check_member_names(data, where)
        check_meaning(manifest, where)
        return manifest
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # wrong types, inf, 1e400
        raise BundleError(f"{where}: malformed field ({type(exc).__name__}: {exc})") from None


def check_meaning(manifest: Manifest, where: str = MANIFEST_NAME) -> None:
    """BundleError naming the field unless every value means something the runtime can act on: sizes positive,
    enums known, the contract's tensor names in order with shapes of the right rank (symbolic axes only where the
    contract has them), engine facts well formed, every artifact hashed. Parsing checked the types; this checks
    what they say, so nothing surfaces later as a KeyError or a wrong shape."""
    pre = manifest.preprocess

    def fail(field_name: str, expected: str, got: Any) -> None:
        raise BundleError(f"{where}: field {field_name!r} is {got!r}, expected {expected}")

    for name, value in (("preprocess.image_size", pre.image_size), ("preprocess.max_text_length",
                                                                     pre.max_text_length), ("top_k", manifest.top_k)):
        if value < 1:
            fail(name, "a positive integer", value)
    if len(pre.mean) != 3 or len(pre.std) != 3 or not all(math.isfinite(v) for v in (*pre.mean, *pre.std)) \
            or min(pre.std) <= 0:
        fail("preprocess.mean/std", "3 finite means and 3 positive stds", (pre.mean, pre.std))
    if len(pre.letterbox_fill) != 3 or not all(0 <= v <= 255 for v in pre.letterbox_fill):
        fail("preprocess.letterbox_fill", "3 integers in 0..255", pre.letterbox_fill)
    score_range = manifest.score_range
    if len(score_range) != 2 or not all(map(math.isfinite, score_range)) or score_range[0] >= score_range[1]:
        fail("score_range", "[low, high] with low < high", score_range)
    if not manifest.class_names:
        fail("class_names", "at least one class", manifest.class_names)
    _check_specs("inputs", manifest.inputs, _expected_inputs(pre), where)
    _check_specs("outputs", manifest.outputs, _expected_outputs(manifest.top_k), where)
    for i, art in enumerate(manifest.artifacts):
        at = f"artifacts[{i}]"
        for name, value, allowed in (("kind", art.kind, KINDS), ("precision", art.precision, PRECISIONS),
                                     ("target", art.target, TARGETS), ("quant_format", art.quant_format,
                                                                        (None, *QUANT_FORMATS))):
            if value not in allowed:
                fail(f"{at}.{name}", f"one of {list(allowed)}", value)
        if not isinstance(art.details, dict):
            fail(f"{at}.details", "an object", art.details)
        for name in art.member_files():
            if name not in manifest.files:
                fail(f"{at}.file", "a file listed in 'files' with its sha256", name)
        if art.parts is not None and manifest.text_features is None:
            fail(f"{at}.parts", "parts only with the manifest's 'text_features' given", asdict(art.parts))
        art.engine_facts()
    if manifest.text_features is not None:
        _check_specs("text_features", (manifest.text_features,), _expected_text_features(manifest.text_features),
                     where)
    for name, digest in manifest.files.items():
        if not _SHA256.fullmatch(digest):
            fail(f"files[{name!r}]", "a sha256 of 64 lowercase hex digits", digest)


def _expected_inputs(pre: Preprocess) -> tuple[tuple[str, str, tuple], ...]:
    """(name, dtype, shape) the contract gives the inputs; "text" stands for the text axis: TEXT_AXIS in schema 2,
    max_text_length in a schema-1 (fixed-length) graph."""
    size = pre.image_size
    return ((INPUT_IDS, "int64", (BATCH_AXIS, "text")), (ATTENTION_MASK, "int64", (BATCH_AXIS, "text")),
            (PIXEL_VALUES, "float32", (BATCH_AXIS, 3, size, size)))


def _expected_text_features(spec: TensorSpec) -> tuple[tuple[str, str, tuple], ...]:
    """text_features is float32 [batch, text_length, feature_dim] with a positive feature_dim."""
    dim = spec.shape[-1] if spec.shape and type(spec.shape[-1]) is int and spec.shape[-1] > 0 else "a positive size"
    return ((TEXT_FEATURES, "float32", (BATCH_AXIS, TEXT_AXIS, dim)),)


def _expected_outputs(top_k: int) -> tuple[tuple[str, str, tuple], ...]:
    return ((SCORE, "float32", (BATCH_AXIS,)), (BOXES, "float32", (BATCH_AXIS, top_k, 4)),
            (CONFIDENCES, "float32", (BATCH_AXIS, top_k)), (LABELS, "int64", (BATCH_AXIS, top_k)))


def _check_specs(field_name: str, specs: tuple[TensorSpec, ...], expected: tuple, where: str) -> None:
    got = [(s.name, s.dtype, s.shape) for s in specs]
    ok = len(got) == len(expected) and all(
        name == want_name and dtype == want_dtype and len(shape) == len(want_shape)
        and all(_dim_ok(d, w) for d, w in zip(shape, want_shape))
        for (name, dtype, shape), (want_name, want_dtype, want_shape) in zip(got, expected))
    if not ok:
        want = [(n, d, ["text_length" if x == "text" else x for x in s]) for n, d, s in expected]
        raise BundleError(f"{where}: field {field_name!r} is {[[n, d, list(s)] for n, d, s in got]}, expected the "
                          f"contract's {want}")


def _dim_ok(got: Any, want: Any) -> bool:
    if want == "text":  # the symbolic text axis, or a schema-1 graph's fixed length
        return got == TEXT_AXIS or (type(got) is int and got > 0)
    return got == want and type(got) is type(want)


def _check_member_names(data: dict[str, Any], where: str) -> None:
    """Every file the manifest names (raw JSON values, before any str() coercion) is a plain member."""
    check_member_name(data["preprocess"].get("tokenizer_file", TOKENIZER_NAME), f"{where}: preprocess.tokenizer_file")
    for i, art in enumerate(data["artifacts"]):
        check_member_name(art["file"], f"{where}: artifacts[{i}].file")
        for role, name in (art.get("parts") or {}).items():
            check_member_name(name, f"{where}: artifacts[{i}].parts.{role}")
    for name in data["files"]:
        check_member_name(name, f"{where}: files")


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Load ``BUNDLE/manifest.json``; raises BundleError with the path on any problem."""
    path = manifest_path(bundle_dir)
    return parse_manifest(path.read_bytes(), where=str(path))


def manifest_path(bundle_dir: str | Path) -> Path:
    """``BUNDLE/manifest.json`` once the bundle is a folder holding one (BundleError naming what is wrong)."""
    if not Path(bundle_dir).is_dir():
        raise BundleError(f"{bundle_dir}: not a bundle directory (expected a folder with {MANIFEST_NAME})")
    path = contained_path(bundle_dir, MANIFEST_NAME, str(bundle_dir))
    if not path.is_file():
        raise BundleError(f"{path}: missing; is {bundle_dir} a bundle written by 'edge-clipguard export'?")
    return path


def parse_manifest(data: bytes, where: str = MANIFEST_NAME) -> Manifest:
    """A manifest from the bytes of ``manifest.json`` (the loader parses exactly the bytes it verified)."""
    try:
        parsed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BundleError(f"{where}: not valid JSON (nested too deeply)") from None
    return manifest_from_dict(parsed, where=where)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_digest(path: Path, actual: str, expected: str) -> None:
    """IntegrityError unless the sha256 ``actual`` of what was read from ``path`` is the ``expected`` one."""
    if actual != expected:
        raise IntegrityError(
            f"{path}: sha256 {actual[:12]}… differs from the manifest's {expected[:12]}… (file changed)"
        )


def _member(bundle_dir: str | Path, manifest: Manifest, name: str) -> tuple[Path, str]:
    """(path, recorded sha256) of bundle file ``name``: inside the bundle (symlinks resolved), recorded, present."""
    path = contained_path(bundle_dir, name, f"{Path(bundle_dir) / MANIFEST_NAME}")
    expected = manifest.files.get(name)
    if expected is None:
        raise BundleError(f"{Path(bundle_dir) / MANIFEST_NAME}: no sha256 recorded for {name!r}")
    if not path.is_file():
        raise BundleError(f"{path}: listed in the manifest but missing from the bundle")
    return path, expected


def verify_file(bundle_dir: str | Path, manifest: Manifest, name: str) -> Path:
    """Path of bundle file ``name`` after checking it is inside the bundle, exists and matches its recorded
    sha256. For tools that hand a path on (export, build-engine); a loader uses ``read_verified``."""
    path, expected = _member(bundle_dir, manifest, name)
    check_digest(path, sha256_file(path), expected)
    return path


def read_verified(bundle_dir: str | Path, manifest: Manifest, name: str) -> bytes:
    """The bytes of bundle file ``name``, read once and checked against the manifest's sha256: the caller
    uses exactly the bytes that were checked, so a file swapped on disk afterwards is never used."""
    path, expected = _member(bundle_dir, manifest, name)
    data = path.read_bytes()
    check_digest(path, sha256_bytes(data), expected)
    return data


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write manifest.json atomically: a reader sees the old manifest or the new one, never half of one."""
    return write_text_atomic(Path(bundle_dir) / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=2) + "\n")
