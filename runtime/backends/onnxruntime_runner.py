"""ONNX Runtime runner: CPU EP with explicit thread counts, or CUDA EP with IOBinding + CUDA graphs.

CPU: intra-op threads default to the CPUs this process may use, inter-op to 1 (the graph is a chain;
parallel branches only add contention).
CUDA: inputs and outputs live in preallocated device OrtValues bound once per input shape (batch size and
padded text length), so each call is host->device copy, run, device->host copy with no allocation. With
``cuda_graph`` the CUDA EP captures the kernel launches of each shape once (``gpu_graph_id`` = slot index)
and replays them; that needs every node on the CUDA EP — if ORT refuses at session creation we fall back to
plain IOBinding and say why in ``cuda_graph_note``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...bundle import TensorSpec
from ..errors import BackendError
from .base import ModelFile, Runner, feed_dims, resolve_shape

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def default_threads() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS tells us)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class OrtConfig:
    device: str = "cpu"  # cpu | cuda
    device_index: int = 0
    intra_op_threads: int | None = None  # None: default_threads()
    inter_op_threads: int = 1
    cuda_graph: bool = True
    max_cuda_graphs: int = 16  # input shapes captured (batch sizes x text lengths); others run without a graph
    max_plain_slots: int = 8  # device buffers kept for shapes without a graph (least recently used go)
    # Whether the CPU thread pool spins for more work after a run. Off for a graph that runs now and then next to
    # another (a bundle's text part): its spinning threads would take the cores from the other session's run.
    spin: bool = True


def slots_to_evict(slots: list[tuple[object, bool]], max_plain: int) -> list[object]:
    """Shapes (slot keys) whose device buffers to free, given (key, has_cuda_graph) oldest use first.

    A captured CUDA graph replays fixed device addresses, so a slot with a graph is never freed (there are
    at most ``max_cuda_graphs`` of them); slots without one are kept up to ``max_plain``, least recently
    used freed first, so a stream of ever-new shapes cannot grow GPU memory without bound."""
    plain = [batch for batch, has_graph in slots if not has_graph]
    return plain[: max(0, len(plain) - max_plain)]


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise BackendError("onnxruntime is not installed: pip install 'edge-clipguard[cpu]' "
                           "(or [gpu] for CUDA)") from None
    return onnxruntime


class _CudaSlot:
    """Device buffers + IOBinding for one input shape (addresses stay fixed, as CUDA graphs require)."""

    def __init__(self, ort, session, dims: dict[str, int], in_types: dict, out_specs: tuple[TensorSpec, ...],
                 in_specs: tuple[TensorSpec, ...], device_index: int, graph_id: int | None):
        def shape(spec):
            return list(resolve_shape(spec, dims))

        self.inputs = {s.name: ort.OrtValue.ortvalue_from_shape_and_type(shape(s), in_types[s.name], "cuda",
                                                                         device_index) for s in in_specs}
        out_types = {o.name: _ORT_TYPES[o.type] for o in session.get_outputs()}
        self.outputs = {s.name: ort.OrtValue.ortvalue_from_shape_and_type(shape(s), out_types[s.name], "cuda",
                                                                          device_index) for s in out_specs}
        self.binding = session.io_binding()
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for name, value in self.outputs.items():
            self.binding.bind_ortvalue_output(name, value)
        self.graph_id = graph_id
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("gpu_graph_id", str(-1 if graph_id is None else graph_id))

    def run(self, session, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, array in feed.items():
            self.inputs[name].update_inplace(np.ascontiguousarray(array))
        session.run_with_iobinding(self.binding, self.run_options)
        return {name: value.numpy() for name, value in self.outputs.items()}


class OnnxRuntimeRunner(Runner):
    """Runs one ONNX artifact. Not thread-safe on CUDA (shared bindings): the Predictor locks around it."""

    name = "onnxruntime"

    def __init__(self, model: ModelFile | str | Path, inputs: tuple[TensorSpec, ...],
                 outputs: tuple[TensorSpec, ...], config: OrtConfig = OrtConfig()):
        super().__init__(inputs, outputs)
        self.model = model if isinstance(model, ModelFile) else ModelFile.read(model)
        self.config = config
        self.session = None
        self.providers: list[str] = []
        self.cuda_graph_note = ""
        self._in_types: dict[str, type] = {}
        self._slots: OrderedDict[tuple, _CudaSlot] = OrderedDict()
        self._graph_ids_used = 0
        self._graphs = False

    @property
    def threads(self) -> int:
        return self.config.intra_op_threads or default_threads()

    def _options(self, ort):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = self.config.inter_op_threads
        options.log_severity_level = 3  # errors only: ORT's placement warnings are not the user's problem
        if not self.config.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _cuda_session(self, ort):
        if hasattr(ort, "preload_dlls"):  # loads CUDA/cuDNN from the nvidia-* wheels (ORT >= 1.21)
            ort.preload_dlls()
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendError("ONNX Runtime has no CUDA provider here: pip install 'edge-clipguard[gpu]' "
                               "(onnxruntime-gpu), or use device cpu")
        base = {"device_id": str(self.config.device_index)}
        attempts = [dict(base, enable_cuda_graph="1"), base] if self.config.cuda_graph else [base]
        last = None
        for options in attempts:
            try:
                session = ort.InferenceSession(self.model.data, self._options(ort),
                                               providers=[("CUDAExecutionProvider", options), "CPUExecutionProvider"])
            except Exception as exc:  # ORT raises its own Fail/RuntimeException types
                last = exc
                if "enable_cuda_graph" in options:
                    self.cuda_graph_note = f"CUDA graph off: {str(exc).splitlines()[0][:200]}"
                continue
            if session.get_providers()[0] != "CUDAExecutionProvider":
                raise BackendError(f"{self.model.name}: ONNX Runtime could not start the CUDA provider "
                                   f"(got {session.get_providers()}); check the driver/CUDA install")
            self._graphs = "enable_cuda_graph" in options
            return session
        raise BackendError(f"{self.model.name}: ONNX Runtime cannot load it on CUDA "
                           f"({str(last).splitlines()[0][:200]})")

    def activate_impl(self) -> None:
        ort = _import_ort()
        self._graphs = False
        try:
            if self.config.device == "cuda":
                self.session = self._cuda_session(ort)
            else:
                self.session = ort.InferenceSession(self.model.data, self._options(ort),
                                                    providers=["CPUExecutionProvider"])
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"{self.model.name}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]})") \
                from None
        self.providers = self.session.get_providers()
        self._in_types = {i.name: _ORT_TYPES[i.type] for i in self.session.get_inputs()}

    def _cast(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Match the artifact's own input dtypes (an fp16 graph may take float16 pixels)."""
        return {name: array.astype(self._in_types[name], copy=False) for name, array in feed.items()}

    def _slot(self, dims: dict[str, int]) -> _CudaSlot:
        key = tuple(sorted(dims.items()))
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            return slot
        graph_id = None
        if self._graphs and self._graph_ids_used < self.config.max_cuda_graphs:
            graph_id, self._graph_ids_used = self._graph_ids_used, self._graph_ids_used + 1
        slot = _CudaSlot(_import_ort(), self.session, dims, self._in_types, self.outputs, self.inputs,
                         self.config.device_index, graph_id)
        self._slots[key] = slot
        for old in slots_to_evict([(k, s.graph_id is not None) for k, s in self._slots.items()],
                                  self.config.max_plain_slots):
            del self._slots[old]  # frees its device buffers
        return slot

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.config.device == "cuda":
            raw = self._slot(feed_dims(feed, self.inputs)).run(self.session, self._cast(feed))
        else:
            names = [o.name for o in self.outputs]
            raw = dict(zip(names, self.session.run(names, self._cast(feed))))
        return {name: (value.astype(np.float32) if value.dtype == np.float16 else value) for name, value in raw.items()}

    def deactivate_impl(self) -> None:
        self._slots.clear()
        self._graph_ids_used = 0
        self.session = None
