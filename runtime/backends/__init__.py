"""Inference backends, each imported only when chosen (the runtime must stay lean).

``create_runner`` turns a selection ``Choice`` into an activated Runner: ONNX Runtime or OpenVINO for
ONNX artifacts; TensorRT for engines, trying each candidate engine until one loads (an engine built for
another GPU or TensorRT version is refused by the TensorRT runner with a BackendError). Runners get the
artifact's bytes as read and checked by ``OpenedBundle.read``, never a path to open again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ...contract import PIXEL_VALUES
from ...errors import CudaError
from ..compile_cache import CompileCache
from ..errors import BackendError
from ..opened_bundle import OpenedBundle
from .base import ModelFile, Runner


def create_runner(bundle: OpenedBundle, choice, threads: int | None = None, device_index: int = 0,
                  compile_cache: CompileCache | None = None, feature_cache=None) -> tuple[Runner, object]:
    """Read and check the artifact's bytes, build and activate its runner; returns (runner, artifact used).
    ``compile_cache``: where OpenVINO keeps compiled models across processes (None: compile every start).
    ``feature_cache`` (a ``text_features.FeatureCache``): given, an artifact cut in two (ONNX parts, or TensorRT
    engines built from them) runs as its parts with each text's features kept (``SplitRunner``); None, or an
    artifact without parts: the whole graph."""
    manifest = bundle.manifest
    if choice.backend in ("onnxruntime", "openvino"):
        artifact = choice.artifact
        make = _ort_runner if choice.backend == "onnxruntime" else _openvino_runner
        shared = RunnerSettings(choice, threads, device_index, compile_cache, manifest.preprocess)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipguard-load") as beside:
            if choice.backend == "openvino":
                beside.submit(_start_openvino)  # a failure here surfaces when the runner activates
            if feature_cache is None or artifact.parts is None:
                model = model_file(bundle, artifact.file)
                return make(model, manifest.inputs, manifest.outputs, shared).activate(), artifact
            text_inputs, fusion_inputs = manifest.part_inputs()
            text = make(model_file(bundle, artifact.parts.text), text_inputs,
                        (manifest.text_features,), shared, now_and_then=True)
            fusion = make(model_file(bundle, artifact.parts.fusion), fusion_inputs,
                          manifest.outputs, shared)
            return _split(text, fusion, feature_cache), artifact
    if choice.backend == "tensorrt":
        reasons = []
        for artifact in choice.candidates:
            try:
                return _tensorrt_runner(bundle, artifact, device_index, feature_cache), artifact
            except (BackendError, CudaError) as exc:
                reasons.append(str(exc))
        raise BackendError("no engine in the bundle loads here: " + "; ".join(reasons))
    raise BackendError(f"unknown backend {choice.backend!r}")


def model_file(bundle: OpenedBundle, name: str) -> ModelFile:
    """Bundle file ``name`` as a runner's ``ModelFile``: its checked bytes, with the digest they matched."""
    return ModelFile(name, bundle.read(name), checked_sha256=bundle.manifest.files[name])


def _start_openvino() -> None:
    """OpenVINO's import and Core (~35 ms of a start), made on another thread while the loading thread reads and
    hashes the artifact's bytes (~25 ms for the base model's two parts; hashing and reading let go of the GIL), so
    the two overlap; the runners then find the Core made (``shared_core``)."""
    from .openvino_runner import shared_core

    shared_core()


def _split(text: Runner, fusion: Runner, feature_cache) -> Runner:
    from ..text_features import SplitRunner

    return SplitRunner(text, fusion, feature_cache).activate()


def _tensorrt_runner(bundle: OpenedBundle, artifact, device_index: int, feature_cache) -> Runner:
    """An engine's runner: its two part engines behind a SplitRunner when it has them and a cache is given."""
    try:
        from .tensorrt_runner import TensorRTRunner
    except ImportError as exc:
        raise BackendError(f"TensorRT backend unavailable ({exc}); pip install 'edge-clipguard[trt]'") from None
    manifest = bundle.manifest

    def engine(name: str, inputs, outputs) -> Runner:
        return TensorRTRunner(model_file(bundle, name), artifact, inputs, outputs, device_index=device_index)

    if feature_cache is None or artifact.parts is None:
        return engine(artifact.file, manifest.inputs, manifest.outputs).activate()
    text_inputs, fusion_inputs = manifest.part_inputs()
    text = engine(artifact.parts.text, text_inputs, (manifest.text_features,))
    fusion = engine(artifact.parts.fusion, fusion_inputs, manifest.outputs)
    return _split(text, fusion, feature_cache)


@dataclass(frozen=True)
class RunnerSettings:
    """What the runners of one Predictor share: the selection, CPU threads, GPU index, OpenVINO's compile cache
    and the manifest's preprocessing (for a graph that takes pixel_values)."""

    choice: Any
    threads: int | None
    device_index: int
    compile_cache: CompileCache | None
    preprocess: Any


def _ort_runner(model, inputs, outputs, shared: RunnerSettings, now_and_then: bool = False):
    """``now_and_then``: a graph that runs between runs of another (the text part): its CPU threads sleep after
    each run instead of spinning (measured: the text part's spinning threads made the next fusion run 2.7x
    slower on 2 cores)."""
    from .onnxruntime_runner import OnnxRuntimeRunner, OrtConfig

    config = OrtConfig(device=shared.choice.device, device_index=shared.device_index, intra_op_threads=shared.threads,
                       spin=not now_and_then)
    return OnnxRuntimeRunner(model, inputs, outputs, config)


def _openvino_runner(model, inputs, outputs, shared: RunnerSettings, now_and_then: bool = False):
    """A graph that takes pixel_values gets the preprocessing: the compiled model normalises the uint8 canvas.
    (``now_and_then`` is ONNX Runtime's concern: OpenVINO's threads do not spin between runs.)"""
    from .openvino_runner import OpenVinoConfig, OpenVinoRunner

    takes_pixels = any(spec.name == PIXEL_VALUES for spec in inputs)
    choice = shared.choice
    config = OpenVinoConfig(threads=shared.threads,
                            bf16=choice.precision == "fp16" and choice.artifact.precision == "fp32",
                            normalize=shared.preprocess if takes_pixels else None, cache=shared.compile_cache)
    return OpenVinoRunner(model, inputs, outputs, config)
