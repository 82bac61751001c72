"""Which artifact of a bundle runs, on which backend and device: a pure function of the manifest.

Rules (documented here because users will ask):
- backend "onnxruntime" and "openvino" use ONNX artifacts; "tensorrt" uses TensorRT engines; "auto" takes
  TensorRT when the device is not the CPU, an engine of the wanted precision exists and ``tensorrt``
  imports; else, on the CPU of an x86 machine with ``openvino`` installed, OpenVINO; otherwise ONNX Runtime.
- OpenVINO runs on the CPU only. Its precision None is fp32; int8 prefers the TensorRT-style Q/DQ file
  (OpenVINO runs it with int8 kernels as it is); fp16 means the fp32 file with bf16 inference, which
  the runner allows only on CPUs with native BF16.
- device "auto" means CUDA for TensorRT, and for ONNX Runtime CUDA when its CUDA provider is installed.
- precision None means: TensorRT int8 > fp16 > fp32 (best engine present); ORT CUDA fp16 > fp32;
  ORT CPU fp32 (the most accurate; ask for int8 to trade accuracy for speed).
- ORT int8 on the CPU prefers the artifact with target "onnxruntime-cpu" (U8S8, fused kernels) over the
  TensorRT-style S8S8 one; ORT int8 on CUDA is refused (Q/DQ falls back to the CPU there).
"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass

from ..bundle import (
    ENGINE,
    ONNX,
    PRECISIONS,
    QUANT_S8S8,
    TARGET_ANY,
    TARGET_ORT_CPU,
    TARGET_TENSORRT,
    Artifact,
    BundleError,
    Manifest,
)

BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")

_TARGET_ORDER = {"cpu": (TARGET_ORT_CPU, TARGET_ANY, TARGET_TENSORRT),
                 "cuda": (TARGET_ANY, TARGET_TENSORRT, TARGET_ORT_CPU),
                 "openvino": (TARGET_ANY, TARGET_TENSORRT, TARGET_ORT_CPU)}
X86 = ("x86_64", "amd64", "i686", "x86")


@dataclass(frozen=True)
class Choice:
    """The resolved plan: ``candidates`` in preference order (TensorRT tries each until one loads)."""

    backend: str
    device: str
    precision: str
    candidates: tuple[Artifact, ...]

    @property
    def artifact(self) -> Artifact:
        return self.candidates[0]


def tensorrt_importable() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def openvino_preferred() -> bool:
    """OpenVINO is installed and this is an x86 CPU (where its int8 kernels measured fastest)."""
    return importlib.util.find_spec("openvino") is not None and platform.machine().lower() in X86


def ort_has_cuda() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise BundleError(f"{what} {value!r} is not one of {', '.join(allowed)}")


def _by_target(artifacts: list[Artifact], order_key: str) -> tuple[Artifact, ...]:
    order = _TARGET_ORDER[order_key]
    return tuple(sorted(artifacts, key=lambda a: order.index(a.target) if a.target in order else len(order)))


def _available(manifest: Manifest, kind: str) -> str:
    have = [f"{a.file} ({a.precision})" for a in manifest.artifacts if a.kind == kind]
    return ", ".join(have) or "none"


def _choose_onnx(manifest: Manifest, device: str, precision: str | None) -> Choice:
    if precision is None:
        order = ("fp16", "fp32") if device == "cuda" else ("fp32",)
        precision = next((p for p in order if manifest.find(kind=ONNX, precision=p)), order[-1])
    if precision == "int8" and device == "cuda":
        raise BundleError("precision int8 with ONNX Runtime on CUDA is not supported (Q/DQ nodes fall back to the "
                          "CPU); use backend tensorrt for int8 on the GPU, or device cpu")
    found = manifest.find(kind=ONNX, precision=precision)
    if not found:
        raise BundleError(f"bundle has no {precision} ONNX artifact for onnxruntime "
                          f"(has: {_available(manifest, ONNX)}); re-export with the matching flag (--int8 / --fp16)")
    return Choice("onnxruntime", device, precision, _by_target(found, device))


def _choose_openvino(manifest: Manifest, device: str, precision: str | None) -> Choice:
    if device == "cuda":
        raise BundleError("backend openvino runs on the CPU; use device cpu (or backend onnxruntime/tensorrt on CUDA)")
    precision = precision or "fp32"
    file_precision = "fp32" if precision == "fp16" else precision  # fp16: the fp32 file, bf16 inference
    found = manifest.find(kind=ONNX, precision=file_precision)
    if not found:
        raise BundleError(f"bundle has no {file_precision} ONNX artifact for openvino "
                          f"(has: {_available(manifest, ONNX)}); re-export with the matching flag (--int8)")
    return Choice("openvino", "cpu", precision, _by_target(found, "openvino"))


def _choose_engine(manifest: Manifest, precision: str | None) -> Choice:
    if precision is None:
        precision = next((p for p in ("int8", "fp16", "fp32") if manifest.find(kind=ENGINE, precision=p)), "fp32")
    found = manifest.find(kind=ENGINE, precision=precision)
    if not found:
        raise BundleError(f"bundle has no {precision} TensorRT engine (has: {_available(manifest, ENGINE)}); build "
                          "one on this GPU with 'edge-clipguard build-engine BUNDLE'")
    return Choice("tensorrt", "cuda", precision, tuple(found))


def _explicit(manifest: Manifest, backend: str, device: str, precision: str | None, artifact: str) -> Choice:
    """An artifact named by file (profile uses this); ``precision`` fp16 on openvino = that fp32 file in bf16."""
    art = manifest.artifact(artifact)
    if backend == "auto":
        backend = "tensorrt" if art.kind == ENGINE else "onnxruntime"
    if (backend == "tensorrt") != (art.kind == ENGINE):
        raise BundleError(f"artifact {artifact!r} is a {art.kind}, which backend {backend!r} cannot run")
    if backend == "tensorrt" and device == "cpu":
        raise BundleError("backend tensorrt needs device cuda, not cpu")
    if backend == "openvino":
        if device == "cuda":
            raise BundleError("backend openvino runs on the CPU; use device cpu")
        bf16 = precision == "fp16" and art.precision == "fp32"
        return Choice("openvino", "cpu", "fp16" if bf16 else art.precision, (art,))
    dev = "cuda" if backend == "tensorrt" else _auto_device(device)
    return Choice(backend, dev, art.precision, (art,))


def choose(manifest: Manifest, backend: str = "auto", device: str = "auto", precision: str | None = None,
           artifact: str | None = None) -> Choice:
    """Resolve backend/device/precision (and an optional explicit artifact file) to a Choice."""
    _check(backend, BACKENDS, "backend")
    _check(device, DEVICES, "device")
    _check(precision, PRECISIONS, "precision")
    if artifact is not None:
        return _explicit(manifest, backend, device, precision, artifact)
    if backend == "tensorrt":
        if device == "cpu":
            raise BundleError("backend tensorrt needs device cuda, not cpu")
        return _choose_engine(manifest, precision)
    if backend == "openvino":
        return _choose_openvino(manifest, device, precision)
    if backend == "auto" and device != "cpu" and tensorrt_importable():
        engines = manifest.find(kind=ENGINE, precision=precision)
        if engines:
            return _choose_engine(manifest, precision)
    resolved = _auto_device(device)
    if backend == "auto" and resolved == "cpu" and openvino_preferred():
        return _choose_openvino(manifest, resolved, precision)
    return _choose_onnx(manifest, resolved, precision)


def slow_path_advice(choice: Choice) -> str | None:
    """A one-line hint when the choice is a known slow path (the S8S8 TensorRT-style INT8 file on ONNX
    Runtime's CPU kernels ran at about 0.5x fp32 on x86), else None."""
    art = choice.artifact
    if choice.backend == "onnxruntime" and choice.device == "cpu" and art.quant_format == QUANT_S8S8:
        return (f"{art.file} (TensorRT-style INT8) runs slowly on ONNX Runtime's CPU kernels; on x86 use "
                "backend openvino (pip install 'edge-clipguard[openvino]'), or re-export with --int8 --cpu-int8")
    return None


def _auto_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if ort_has_cuda() else "cpu"
