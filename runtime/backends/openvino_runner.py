"""OpenVINO runner: the bundle's ONNX files read directly by OpenVINO's CPU plugin.

Why OpenVINO on CPUs: it runs the TensorRT-style INT8 Q/DQ file (``model.int8.onnx``) with int8 kernels
(VNNI/AMX) as it is, with no second export format, and on a Xeon measured 2.3x ONNX Runtime fp32
on that file where ORT itself ran it at 0.6x. Settings: ``PERFORMANCE_HINT=LATENCY`` (one stream,
batch-1 latency), ``INFERENCE_NUM_THREADS`` as asked, and ``INFERENCE_PRECISION_HINT``: f32 unless
reduced precision is asked for (``bf16=True``, which selection sets only for precision fp16 and only
where the CPU reports native BF16), so fp32 and int8 results are not silently rounded to bf16 on CPUs
(AMX Xeons) where OpenVINO would otherwise default to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...bundle import TensorSpec
from ..errors import BackendError
from .base import Runner
from .onnxruntime_runner import default_threads

INSTALL_HINT = "pip install 'edge-clipguard[openvino]'"


@dataclass(frozen=True)
class OpenVinoConfig:
    threads: int | None = None  # None: the CPUs this process may use
    bf16: bool = False  # reduced-precision inference (only where the CPU has native BF16)


def import_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise BackendError(f"OpenVINO is not installed ({exc}); {INSTALL_HINT}") from None
    return openvino


def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's CPU optimization capabilities (e.g. FP32, INT8, BF16), or () without OpenVINO."""
    try:
        import openvino
    except ImportError:
        return ()
    return tuple(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def has_native_bf16() -> bool:
    return "BF16" in cpu_capabilities()


class OpenVinoRunner(Runner):
    """Runs one ONNX artifact on OpenVINO's CPU plugin (one infer request; the Predictor locks around it)."""

    name = "openvino"

    def __init__(self, path: str | Path, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
                 config: OpenVinoConfig = OpenVinoConfig()):
        super().__init__(inputs, outputs)
        self.path = Path(path)
        self.config = config
        self.compiled = None
        self.request = None
        self._ports: dict[str, object] = {}
        self.precision_note = ""

    @property
    def threads(self) -> int:
        return self.config.threads or default_threads()

    def activate_impl(self) -> None:
        ov = import_openvino()
        core = ov.Core()
        if self.config.bf16 and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise BackendError("OpenVINO: this CPU has no native bf16 (no AVX512_BF16/AMX); use precision fp32 or "
                               "int8")
        hint = "bf16" if self.config.bf16 else "f32"
        try:
            model = core.read_model(str(self.path))
            self.compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                              "INFERENCE_NUM_THREADS": self.threads,
                                                              "INFERENCE_PRECISION_HINT": hint})
            self._ports = {spec.name: self.compiled.output(spec.name) for spec in self.outputs}
        except Exception as exc:  # OpenVINO raises RuntimeError/its own types with multi-line text
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{self.path.name}: OpenVINO cannot load it ({reason})") from None
        self.request = self.compiled.create_infer_request()
        self.precision_note = f"OpenVINO CPU, {self.threads} threads, {hint} inference" + (
            " (native bf16 on this CPU)" if self.config.bf16 else "")

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.request.infer(feed)
        return {name: np.array(self.request.get_tensor(port).data) for name, port in self._ports.items()}

    def deactivate_impl(self) -> None:
        self.request = None
        self.compiled = None
        self._ports = {}
