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

import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...bundle import Preprocess, TensorSpec
from ...contract import BATCH_AXIS, PIXEL_VALUES
from ..compile_cache import CompileCache
from ..errors import BackendError
from .base import ModelFile, Runner, feed_dims, resolve_shape
from .onnxruntime_runner import default_threads
from .openvino_import import import_openvino
from .openvino_tables import gather_before_dequantize

# What this runner changes in a graph before compiling it; part of the compile-cache key, so a blob compiled
# without a pass is never imported by a runner that applies it.
GRAPH_PASSES = ("gather_before_dequantize",)


@dataclass(frozen=True)
class LayerTime:
    """One executed node of a compiled model: its type, the kernel OpenVINO chose (``exec_type``, e.g.
    ``brgconv_avx512_core_vnni_I8``: the suffix is the precision it computes in) and its mean time."""

    name: str
    node_type: str
    exec_type: str
    ms: float
    sources: str = ""  # the graph nodes OpenVINO fused into this one (comma-separated ONNX names), when known

    @property
    def int8(self) -> bool:
        """Computes on 8-bit integers: OpenVINO names such kernels with an I8/U8 precision suffix."""
        return self.exec_type.rsplit("_", 1)[-1].upper() in ("I8", "U8")


@dataclass(frozen=True)
class OpenVinoConfig:
    threads: int | None = None  # None: the CPUs this process may use
    bf16: bool = False  # reduced-precision inference (only where the CPU has native BF16)
    # The bundle's image constants: given, the compiled model takes the uint8 letterboxed canvas (NHWC) and
    # converts, normalises and transposes it itself (PrePostProcessor), which OpenVINO fuses into its first
    # layer; numpy's normalise (~0.15 ms per 320 px image) leaves the runtime's overhead.
    normalize: Preprocess | None = None
    cache: CompileCache | None = None  # compiled models kept across processes (None: compile every start)


_CORE_LOCK = threading.Lock()
_CORE: list = []


def shared_core():
    """The process's one ``ov.Core``, made at first use and kept. Why one: OpenVINO's CPU plugin installs an
    alternate signal stack on the thread that creates it and, when destroyed, puts back the one it found; two
    Cores destroyed in the order they were made leave that thread's alternate stack pointing at freed memory, and
    the next signal (SIGTERM, Ctrl-C) crashes the process (OpenVINO 2026.4; two Predictors, or a bundle's two
    parts, each with its own Core did this). A Core is thread-safe, and one Core compiles and caches for all."""
    with _CORE_LOCK:
        if not _CORE:
            _CORE.append(import_openvino().Core())
        return _CORE[0]


def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's CPU optimization capabilities (e.g. FP32, INT8, BF16), or () without OpenVINO."""
    try:
        import_openvino()
    except BackendError:
        return ()
    return tuple(shared_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def has_native_bf16() -> bool:
    return "BF16" in cpu_capabilities()


class OpenVinoRunner(Runner):
    """Runs one ONNX artifact on OpenVINO's CPU plugin (the Predictor locks around ``infer``).

    Compiled variants: for batch 1, one per padded text length with every dimension fixed, where OpenVINO
    picks faster kernels (measured on a 2-core EPYC: int8 13.8 ms static vs 15.4 ms dynamic); for every other
    batch size one with dynamic batch and text axes. Each is compiled when first used, not at load, so a
    single-image app with short queries compiles one small variant; with a ``CompileCache`` a later process
    imports the compiled blob instead of compiling again.
    """

    name = "openvino"

    def __init__(self, model: ModelFile | str | Path, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
                 config: OpenVinoConfig = OpenVinoConfig()):
        super().__init__(inputs, outputs)
        self.model = model if isinstance(model, ModelFile) else ModelFile.read(model)
        self.config = config
        self._core = None
        self._graph = None  # the ov.Model read from the bytes, only when something must be compiled
        self._requests: dict[str, tuple[object, dict[str, object]]] = {}
        self.compile_log: list[tuple[str, str, float]] = []  # (variant, "compiled" | "cache", seconds)
        self.precision_note = ""
        if config.normalize is not None:
            self.takes_uint8_pixels = True
            self.inputs = tuple(uint8_canvas_spec(spec) if spec.name == PIXEL_VALUES else spec for spec in inputs)
        self._graph_inputs = inputs

    @property
    def threads(self) -> int:
        return self.config.threads or default_threads()

    @property
    def hint(self) -> str:
        return "bf16" if self.config.bf16 else "f32"

    def _settings(self) -> dict[str, object]:
        return {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
                "INFERENCE_PRECISION_HINT": self.hint}

    def activate_impl(self) -> None:
        self._core = shared_core()
        if self.config.bf16 and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise BackendError("OpenVINO: this CPU has no native bf16 (no AVX512_BF16/AMX); use precision fp32 or "
                               "int8")
        self._requests, self._graph, self.compile_log = {}, None, []
        self.precision_note = f"OpenVINO CPU, {self.threads} threads, {self.hint} inference" + (
            " (native bf16 on this CPU)" if self.config.bf16 else "")

    def prepare(self, dims: dict[str, int]) -> None:
        """Compile (or import from the cache) the variant for inputs of these axis sizes (e.g. batch 1, text
        length 8) now rather than at its first inference."""
        self._request(dims)

    def _request(self, dims: dict[str, int]) -> tuple[object, dict[str, object]]:
        static = dims if dims.get(BATCH_AXIS) == 1 else None
        variant = "dynamic" if static is None else "batch1" + "".join(
            f"-{axis}{size}" for axis, size in sorted(dims.items()) if axis != BATCH_AXIS)
        if variant not in self._requests:
            started = time.perf_counter()
            compiled, source = self._compiled(variant, static)
            try:
                ports = {spec.name: compiled.output(spec.name) for spec in self.outputs}
            except Exception as exc:
                raise BackendError(f"{self.model.name}: OpenVINO's compiled model lacks an output "
                                   f"({_first_line(exc)})") from None
            self._requests[variant] = (compiled.create_infer_request(), ports)
            self.compile_log.append((variant, source, time.perf_counter() - started))
        return self._requests[variant]

    def _compiled(self, variant: str, static: dict[str, int] | None):
        """(compiled model, "cache" | "compiled"): imported from the cache when a sound entry exists."""
        cache = self.config.cache
        key = cache.key(self._cache_facts(variant)) if cache is not None else None
        if cache is not None:
            blob = cache.load(key)
            if blob is not None:
                try:
                    return self._core.import_model(blob, "CPU", self._settings()), "cache"
                except Exception:  # an entry OpenVINO will not take is rebuilt, never an error
                    cache.forget(key)
        compiled = self._compile(static)
        if cache is not None:
            try:
                cache.store(key, compiled.export_model().getvalue())
            except Exception:  # a plugin that cannot export just is not cached
                pass
        return compiled, "compiled"

    def _cache_facts(self, variant: str) -> dict[str, object]:
        pre = self.config.normalize
        return {"backend": "openvino", "version": import_openvino().get_version(), "artifact": self.model.sha256,
                "variant": variant, "settings": self._settings(), "cpu": cpu_identity(self._core),
                "graph_passes": GRAPH_PASSES,
                "inputs": [(s.name, s.dtype, list(s.shape)) for s in self._graph_inputs],
                "normalize": None if pre is None else [list(pre.mean), list(pre.std)]}

    def profile_layers(self, feed: dict[str, np.ndarray], iters: int = 20) -> list[LayerTime]:
        """Per-node times of ``feed``'s shape from OpenVINO's own profiling (``PERF_COUNT``), averaged over
        ``iters`` inferences of a separately compiled copy (the variants that serve stay as they are)."""
        dims = feed_dims(feed, self.inputs)
        compiled = self._compile(dims if dims.get(BATCH_AXIS) == 1 else None, {**self._settings(), "PERF_COUNT": True})
        origins = {op.get_friendly_name(): _original_names(op) for op in compiled.get_runtime_model().get_ordered_ops()}
        request = compiled.create_infer_request()
        request.infer(feed, share_inputs=True)  # first call: allocations, not counted
        totals: dict[str, list] = {}
        for _ in range(iters):
            request.infer(feed, share_inputs=True)
            for info in request.profiling_info:
                if str(info.status).endswith("EXECUTED") and not str(info.status).endswith("NOT_RUN"):
                    entry = totals.setdefault(info.node_name, [info.node_type, info.exec_type, 0.0])
                    entry[2] += info.real_time.total_seconds() * 1e3
        return [LayerTime(name, kind, exec_type, total / iters, origins.get(name, ""))
                for name, (kind, exec_type, total) in totals.items()]

    def _compile(self, static: dict[str, int] | None, settings: dict[str, object] | None = None):
        """Compile the graph, with every input reshaped to ``static`` axis sizes when given."""
        if self._graph is None:
            try:
                self._graph = self._core.read_model(self.model.data)
            except Exception as exc:  # OpenVINO raises RuntimeError/its own types with multi-line text
                raise BackendError(f"{self.model.name}: OpenVINO cannot read it ({_first_line(exc)})") from None
        model = self._graph.clone()
        gather_before_dequantize(model)
        if static is not None:
            model.reshape({spec.name: list(resolve_shape(spec, static)) for spec in self._graph_inputs})
        try:
            return self._core.compile_model(self._with_normalize(model), "CPU", settings or self._settings())
        except Exception as exc:
            raise BackendError(f"{self.model.name}: OpenVINO cannot compile it ({_first_line(exc)})") from None

    def _with_normalize(self, model):
        """uint8 NHWC in; convert to f32, (x - 255 mean) / (255 std), NCHW inside the compiled model."""
        pre = self.config.normalize
        if pre is None:
            return model
        ov = import_openvino()
        from openvino.preprocess import PrePostProcessor

        ppp = PrePostProcessor(model)
        pixels = ppp.input(PIXEL_VALUES)
        pixels.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        pixels.model().set_layout(ov.Layout("NCHW"))
        pixels.preprocess().convert_element_type(ov.Type.f32).mean([255.0 * m for m in pre.mean]).scale(
            [255.0 * s for s in pre.std])
        return ppp.build()

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request, ports = self._request(feed_dims(feed, self.inputs))
        request.infer(feed, share_inputs=True)  # no copy of the pixel batch into OpenVINO tensors
        return {name: np.array(request.get_tensor(port).data) for name, port in ports.items()}

    def deactivate_impl(self) -> None:
        self._requests = {}
        self._graph = None
        self._core = None


def cpu_identity(core) -> dict[str, object]:
    """What a compiled blob is specific to: the CPU's name and OpenVINO's view of its capabilities."""
    return {"name": core.get_property("CPU", "FULL_DEVICE_NAME"),
            "capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
            "machine": platform.machine()}


def _original_names(op) -> str:
    """The ONNX node names an executed node was fused from (OpenVINO renames fused int8 convolutions)."""
    info = op.get_rt_info()
    return str(info["originalLayersNames"].astype(str)) if "originalLayersNames" in info else ""


def uint8_canvas_spec(spec: TensorSpec) -> TensorSpec:
    """pixel_values [batch, 3, S, S] float32 -> [batch, S, S, 3] uint8, the letterboxed canvas."""
    batch, channels, height, width = spec.shape
    return TensorSpec(spec.name, "uint8", (batch, height, width, channels))


def _first_line(exc: Exception) -> str:
    """The first line of OpenVINO's message that says something: it leads with "Exception from src/...:N:"
    lines naming its own source files."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith("Exception from ")]
    return (said or lines or [type(exc).__name__])[0][:200]
