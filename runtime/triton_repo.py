"""A standard Triton model repository from a bundle: its ONNX and plan files served by Triton's own backends.

For teams that run a full Triton deployment instead of ``serve``. ``write_triton_repo(bundle, out)`` writes
one model per artifact:

    OUT/clipguard_fp32/config.pbtxt + 1/model.onnx        backend "onnxruntime"
    OUT/clipguard_int8_cpu/config.pbtxt + 1/model.onnx    backend "onnxruntime", KIND_CPU (the U8S8 twin)
    OUT/clipguard_int8_plan/config.pbtxt + 1/model.plan   platform "tensorrt_plan", KIND_GPU

An artifact cut in two (schema 3 ``parts``) also gets its parts as two models and an ensemble of them:

    OUT/clipguard_int8_text/ + OUT/clipguard_int8_fusion/   the text graph and the image + fusion graph
    OUT/clipguard_int8_ensemble/config.pbtxt                platform "ensemble": text, then fusion

The ensemble answers what the whole model answers; a client that asks one question of many images calls the text
model once and the fusion model per image with the ``text_features`` it got (what the Predictor's feature cache
does in-process).

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


def _parameter_blocks(manifest: Manifest) -> list[str]:
    """The manifest's facts as ModelConfig ``parameters`` entries (string values)."""
    return [f"parameters {{\n  key: {_quote(k)}\n  value: {{ string_value: {_quote(v)} }}\n}}"
            for k, v in _parameters(manifest).items()]


def _quote(text: str) -> str:
    """A protobuf text-format string literal (UTF-8 kept as is; quotes, backslashes and newlines escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def engine_max_batch(artifact: Artifact) -> int | None:
    facts = artifact.engine_facts()
    return facts.batch[2] if facts is not None and facts.batch is not None else None


def model_config_text(manifest: Manifest, artifact: Artifact, name: str, max_batch: int = 16,
                      max_queue_delay_us: int = 2000, instances: int = 1,
                      io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig) serving ``artifact`` as model ``name``;
    ``io``: (inputs, outputs) when not the whole graph's (a part)."""
    inputs, outputs = io or (manifest.inputs, manifest.outputs)
    if artifact.kind == ENGINE:
        runtime, kind = 'platform: "tensorrt_plan"', "KIND_GPU"
        cap = engine_max_batch(artifact)
        max_batch = min(max_batch, cap) if cap else max_batch
    elif artifact.kind == ONNX:
        runtime, kind = 'backend: "onnxruntime"', ("KIND_CPU" if artifact.target == TARGET_ORT_CPU else None)
    else:
        raise BundleError(f"{artifact.file}: artifact kind {artifact.kind!r} cannot be served by Triton here")
    lines = [f"name: {_quote(name)}", runtime, f"max_batch_size: {max_batch}",
             "input [\n" + ",\n".join(_tensor(t) for t in inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor(t) for t in outputs) + "\n]",
             f"dynamic_batching {{\n  max_queue_delay_microseconds: {max_queue_delay_us}\n}}"]
    if kind:
        lines.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]")
    else:
        lines.append(f"instance_group [\n  {{\n    count: {instances}\n  }}\n]")
    lines += _parameter_blocks(manifest)
    return "\n".join(lines) + "\n"


def _step(model: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]) -> str:
    maps = [f'      input_map {{ key: {_quote(t.name)} value: {_quote(t.name)} }}' for t in inputs]
    maps += [f'      output_map {{ key: {_quote(t.name)} value: {_quote(t.name)} }}' for t in outputs]
    return f"    {{\n      model_name: {_quote(model)}\n      model_version: -1\n" + "\n".join(maps) + "\n    }"


def ensemble_config_text(manifest: Manifest, name: str, text_model: str, fusion_model: str, max_batch: int) -> str:
    """config.pbtxt of an ensemble that runs ``text_model`` then ``fusion_model``: the whole graph's inputs and
    outputs, ``text_features`` passed between the two steps."""
    text_inputs, fusion_inputs = manifest.part_inputs()
    lines = [f"name: {_quote(name)}", 'platform: "ensemble"', f"max_batch_size: {max_batch}",
             "input [\n" + ",\n".join(_tensor(t) for t in manifest.inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor(t) for t in manifest.outputs) + "\n]",
             "ensemble_scheduling {\n  step [\n" + ",\n".join((
                 _step(text_model, text_inputs, (manifest.text_features,)),
                 _step(fusion_model, fusion_inputs, manifest.outputs))) + "\n  ]\n}"]
    lines += _parameter_blocks(manifest)
    return "\n".join(lines) + "\n"


def repository_models(manifest: Manifest, prefix: str = MODEL_PREFIX) -> list[tuple[str, Artifact, tuple | None]]:
    """(model name, artifact, io) of every model file to serve: each artifact's whole graph, then, for one cut in
    two, its text part and fusion part as artifacts of their own (io: the part's inputs and outputs)."""
    models = []
    for art in manifest.artifacts:
        if art.kind not in (ONNX, ENGINE):
            continue
        models.append((model_name(art, prefix), art, None))
        if art.parts is not None:
            text_io, fusion_io = manifest.part_inputs()
            for file, io in ((art.parts.text, (text_io, (manifest.text_features,))),
                             (art.parts.fusion, (fusion_io, manifest.outputs))):
                part = Artifact(file, art.kind, art.precision, art.target, art.quant_format, art.details)
                models.append((model_name(part, prefix), part, io))
    return models


def ensemble_name(artifact: Artifact, prefix: str = MODEL_PREFIX) -> str:
    """clipguard_int8 -> clipguard_int8_ensemble; clipguard_int8_plan -> clipguard_int8_plan_ensemble."""
    return f"{model_name(artifact, prefix)}_ensemble"


def write_triton_repo(bundle_dir: str | Path, out: str | Path, max_batch: int = 16, max_queue_delay_us: int = 2000,
                      instances: int = 1, prefix: str = MODEL_PREFIX) -> list[tuple[str, str]]:
    """Write the repository (atomically: all of it or nothing); returns [(model name, artifact file)].

    Each artifact's sha256 is checked against the manifest before it is copied. ``out`` must not exist or
    be empty."""
    bundle_dir, out = Path(bundle_dir), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out}: exists and is not an empty directory; pick a new one for the model repository")
    manifest = read_manifest(bundle_dir)
    models = repository_models(manifest, prefix)
    if not models:
        raise BundleError(f"{bundle_dir}: the manifest lists no ONNX or plan artifact to serve")
    written = []
    with atomic_directory(out) as tmp:
        for name, art, io in models:
            data = read_verified(bundle_dir, manifest, art.file)  # the bytes checked are the bytes written
            version_dir = tmp / name / "1"
            version_dir.mkdir(parents=True)
            (version_dir / ("model.plan" if art.kind == ENGINE else "model.onnx")).write_bytes(data)
            (tmp / name / "config.pbtxt").write_text(
                model_config_text(manifest, art, name, max_batch, max_queue_delay_us, instances, io),
                encoding="utf-8")
            written.append((name, art.file))
        for art in (a for a in manifest.artifacts if a.kind in (ONNX, ENGINE) and a.parts is not None):
            name = ensemble_name(art, prefix)
            parts = [n for n, part, _ in models if part.file in (art.parts.text, art.parts.fusion)]
            cap = engine_max_batch(art)
            (tmp / name / "1").mkdir(parents=True)  # Triton wants a version folder, even an empty one
            (tmp / name / "config.pbtxt").write_text(ensemble_config_text(
                manifest, name, parts[0], parts[1], min(max_batch, cap) if cap else max_batch), encoding="utf-8")
            written.append((name, f"{art.parts.text} + {art.parts.fusion}"))
    return written
