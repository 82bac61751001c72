"""Inference backends, each imported only when chosen (the runtime must stay lean).

``create_runner`` turns a selection ``Choice`` into an activated Runner: ONNX Runtime or OpenVINO for
ONNX artifacts; TensorRT for engines, trying each candidate engine until one loads (an engine built for
another GPU or TensorRT version is refused by the TensorRT runner with a BackendError). Runners get the
artifact's bytes as read and checked by ``OpenedBundle.read``, never a path to open again.
"""

from __future__ import annotations

from ...errors import CudaError
from ..compile_cache import CompileCache
from ..errors import BackendError
from ..opened_bundle import OpenedBundle
from .base import ModelFile, Runner


def create_runner(bundle: OpenedBundle, choice, threads: int | None = None, device_index: int = 0,
                  compile_cache: CompileCache | None = None) -> tuple[Runner, object]:
    """Read and check the artifact's bytes, build and activate its runner; returns (runner, artifact used).
    ``compile_cache``: where OpenVINO keeps compiled models across processes (None: compile every start)."""
    manifest = bundle.manifest
    if choice.backend == "onnxruntime":
        from .onnxruntime_runner import OnnxRuntimeRunner, OrtConfig

        artifact = choice.artifact
        config = OrtConfig(device=choice.device, device_index=device_index, intra_op_threads=threads)
        model = ModelFile(artifact.file, bundle.read(artifact.file))
        return OnnxRuntimeRunner(model, manifest.inputs, manifest.outputs, config).activate(), artifact
    if choice.backend == "openvino":
        from .openvino_runner import OpenVinoConfig, OpenVinoRunner

        artifact = choice.artifact
        config = OpenVinoConfig(threads=threads, bf16=choice.precision == "fp16" and artifact.precision == "fp32",
                                normalize=manifest.preprocess, cache=compile_cache)
        model = ModelFile(artifact.file, bundle.read(artifact.file))
        return OpenVinoRunner(model, manifest.inputs, manifest.outputs, config).activate(), artifact
    if choice.backend == "tensorrt":
        try:
            from .tensorrt_runner import TensorRTRunner
        except ImportError as exc:
            raise BackendError(f"TensorRT backend unavailable ({exc}); pip install 'edge-clipguard[trt]'") from None
        reasons = []
        for artifact in choice.candidates:
            engine = ModelFile(artifact.file, bundle.read(artifact.file))
            try:
                runner = TensorRTRunner(engine, artifact, manifest.inputs, manifest.outputs, device_index=device_index)
                return runner.activate(), artifact
            except (BackendError, CudaError) as exc:
                reasons.append(str(exc))
        raise BackendError("no engine in the bundle loads here: " + "; ".join(reasons))
    raise BackendError(f"unknown backend {choice.backend!r}")
