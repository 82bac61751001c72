"""Inference backends, each imported only when chosen (the runtime must stay lean).

``create_runner`` turns a selection ``Choice`` into an activated Runner: ONNX Runtime or OpenVINO for
ONNX artifacts; TensorRT for engines, trying each candidate engine until one loads (an engine built for
another GPU or TensorRT version is refused by the TensorRT runner with a BackendError).
"""

from __future__ import annotations

from pathlib import Path

from ...bundle import Manifest, verify_file
from ...errors import CudaError
from ..errors import BackendError
from .base import Runner


def create_runner(bundle_dir: str | Path, manifest: Manifest, choice, threads: int | None = None,
                  device_index: int = 0) -> tuple[Runner, object]:
    """Verify the artifact's sha256, build and activate its runner; returns (runner, artifact used)."""
    if choice.backend == "onnxruntime":
        from .onnxruntime_runner import OnnxRuntimeRunner, OrtConfig

        artifact = choice.artifact
        path = verify_file(bundle_dir, manifest, artifact.file)
        config = OrtConfig(device=choice.device, device_index=device_index, intra_op_threads=threads)
        return OnnxRuntimeRunner(path, manifest.inputs, manifest.outputs, config).activate(), artifact
    if choice.backend == "openvino":
        from .openvino_runner import OpenVinoConfig, OpenVinoRunner

        artifact = choice.artifact
        path = verify_file(bundle_dir, manifest, artifact.file)
        config = OpenVinoConfig(threads=threads, bf16=choice.precision == "fp16" and artifact.precision == "fp32",
                                normalize=manifest.preprocess)
        return OpenVinoRunner(path, manifest.inputs, manifest.outputs, config).activate(), artifact
    if choice.backend == "tensorrt":
        try:
            from .tensorrt_runner import TensorRTRunner
        except ImportError as exc:
            raise BackendError(f"TensorRT backend unavailable ({exc}); pip install 'edge-clipguard[trt]'") from None
        reasons = []
        for artifact in choice.candidates:
            path = verify_file(bundle_dir, manifest, artifact.file)
            try:
                runner = TensorRTRunner(path, artifact, manifest.inputs, manifest.outputs, device_index=device_index)
                return runner.activate(), artifact
            except (BackendError, CudaError) as exc:
                reasons.append(str(exc))
        raise BackendError("no engine in the bundle loads here: " + "; ".join(reasons))
    raise BackendError(f"unknown backend {choice.backend!r}")
