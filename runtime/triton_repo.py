"""A standard Triton model repository from a bundle: its ONNX and plan files served by Triton's own backends.

For teams that run a full Triton deployment instead of ``serve``. ``write_triton_repo(bundle, out)`` writes
one model per artifact:

    OUT/clipguard_fp32/config.pbtxt + 1/model.onnx        backend "onnxruntime"
    OUT/clipguard_int8_cpu/config.pbtxt + 1/model.onnx    backend "onnxruntime", KIND_CPU (the U8S8 twin)
    OUT/clipguard_int8_plan/config.pbtxt + 1/model.plan   platform "tensorrt_plan", KIND_GPU

Each config carries the bundle's tensor names, dtypes and dims (the batch dimension through
``max_batch_size``; a plan's is capped at its optimisation profile's maximum), dynamic batching, and the
class names, score range, top_k and preprocessing constants in ``parameters``. The graphs are the bare
model: tokenizing and letterboxing are NOT inside, so a client sends ``input_ids``/``attention_mask``
(int64 [batch, text_length], any length up to max_text_length, dims -1 in the config; from the bundle's
tokenizer.json) and ``pixel_values`` (float32 [batch, 3, S, S], letterboxed and normalised with the
manifest's constants) and maps ``boxes`` back from
letterboxed pixels itself (``edge_clipguard.preprocess.boxes_to_original``); confidences are not filtered
and no NMS runs. ``serve`` does all of that for you. The configs are checked by parsing them as Triton's
ModelConfig protobuf and by Triton's own config validation (PyTriton's tritonserver, which stops at the
missing onnxruntime/tensorrt backend); they were not run in a Triton with those backends here.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_directory
from ..bundle import ENGINE, ONNX, TARGET_ORT_CPU, Artifact, Manifest, TensorSpec, read_manifest, read_verified
from ..contract import TEXT_AXIS
from .errors import BundleError
from .serve import manifest_parameters

MODEL_PREFIX = "clipguard"
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                 "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL"}


def model_name(artifact: Artifact, prefix: str = MODEL_PREFIX) -> str:
    """model.fp32.onnx -> clipguard_fp32, model.int8-cpu.onnx -> clipguard_int8_cpu, model.int8.plan ->
    clipguard_int8_plan."""
    stem = artifact.file.removeprefix("model.").rsplit(".", 1)[0].replace("-", "_").replace(".", "_")
    return f"{prefix}_{stem}" + ("_plan" if artifact.kind == ENGINE else "")


def _dims(spec: TensorSpec) -> list[int]:
    """Dims after the batch dimension: fixed sizes, and -1 (Triton's variable size) for the text axis."""
    if not spec.shape or isinstance(spec.shape[0], int):
        raise BundleError(f"tensor {spec.name!r} has shape {list(spec.shape)}; expected a symbolic batch first")
    rest = [-1 if d == TEXT_AXIS else d for d in spec.shape[1:]]
    if not all(isinstance(d, int) and (d > 0 or d == -1) for d in rest):
        raise BundleError(f"tensor {spec.name!r} has shape {list(spec.shape)}; only the batch and text axes may "
                          "be symbolic")
    return rest


def _tensor(spec: TensorSpec) -> str:
    if spec.dtype not in TRITON_DTYPES:
        raise BundleError(f"tensor {spec.name!r}: dtype {spec.dtype!r} has no Triton type here")
    dims = _dims(spec)
    # A per-item scalar (shape [batch]) is dims [1] reshaped to [] (Triton rejects empty dims).
    shape = f"dims: [ {', '.join(map(str, dims or [1]))} ]" + ("\n    reshape: { shape: [ ] }" if not dims else "")
    return f'  {{\n    name: "{spec.name}"\n    data_type: {TRITON_DTYPES[spec.dtype]}\n    {shape}\n  }}'


def _parameters(manifest: Manifest) -> dict[str, str]:
    pre = manifest.preprocess
    return {**manifest_parameters(manifest), "image_size": str(pre.image_size), "mean": json.dumps(list(pre.mean)),
            "std": json.dumps(list(pre.std)), "letterbox_fill": json.dumps(list(pre.letterbox_fill)),
            "max_text_length": str(pre.max_text_length),
            "boxes": "x1,y1,x2,y2 in letterboxed input pixels; map back with the letterbox (not done in the graph)",
            "inputs": "input_ids/attention_mask from the bundle's tokenizer.json; pixel_values letterboxed, "
                      "normalised"}


def _quote(text: str) -> str:
    """A protobuf text-format string literal (UTF-8 kept as is; quotes, backslashes and newlines escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def engine_max_batch(artifact: Artifact) -> int | None:
    facts = artifact.engine_facts()
    return facts.batch[2] if facts is not None and facts.batch is not None else None


def model_config_text(manifest: Manifest, artifact: Artifact, name: str, max_batch: int = 16,
                      max_queue_delay_us: int = 2000, instances: int = 1) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) serving ``artifact`` as model ``name``."""
    if artifact.kind == ENGINE:
        runtime, kind = 'platform: "tensorrt_plan"', "KIND_GPU"
        cap = engine_max_batch(artifact)
        max_batch = min(max_batch, cap) if cap else max_batch
    elif artifact.kind == ONNX:
        runtime, kind = 'backend: "onnxruntime"', ("KIND_CPU" if artifact.target == TARGET_ORT_CPU else None)
    else:
        raise BundleError(f"{artifact.file}: artifact kind {artifact.kind!r} cannot be served by Triton here")
    lines = [f"name: {_quote(name)}", runtime, f"max_batch_size: {max_batch}",
             "input [\n" + ",\n".join(_tensor(t) for t in manifest.inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor(t) for t in manifest.outputs) + "\n]",
             f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}"]
    if kind:
        lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    else:
        lines.append(f"instance_group [\n  {{\n    count: {instances}\n  }}\n]")
    lines += [f"parameters {{\n  key: {_quote(k)}\n  value: {{ string_value: {_quote(v)} }}\n}}"
              for k, v in _parameters(manifest).items()]
    return "\n".join(lines) + "\n"


def write_triton_repo(bundle_dir: str | Path, out: str | Path, max_batch: int = 16, max_queue_delay_us: int = 2000,
                      instances: int = 1, prefix: str = MODEL_PREFIX) -> list[tuple[str, str]]:
    """Write the repository (atomically: all of it or nothing); returns [(model name, artifact file)].

    Each artifact's sha256 is checked against the manifest before it is copied. ``out`` must not exist or
    be empty."""
    bundle_dir, out = Path(bundle_dir), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out}: exists and is not an empty directory; pick a new one for the model repository")
    manifest = read_manifest(bundle_dir)
    servable = [a for a in manifest.artifacts if a.kind in (ONNX, ENGINE)]
    if not servable:
        raise BundleError(f"{bundle_dir}: the manifest lists no ONNX or plan artifact to serve")
    written = []
    with atomic_directory(out) as tmp:
        for art in servable:
            name = model_name(art, prefix)
            data = read_verified(bundle_dir, manifest, art.file)  # the bytes checked are the bytes written
            version_dir = tmp / name / "1"
            version_dir.mkdir(parents=True)
            (version_dir / ("model.plan" if art.kind == ENGINE else "model.onnx")).write_bytes(data)
            (tmp / name / "config.pbtxt").write_text(
                model_config_text(manifest, art, name, max_batch, max_queue_delay_us, instances), encoding="utf-8")
            written.append((name, art.file))
    return written
