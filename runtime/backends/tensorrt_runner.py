"""TensorRT runner: a plain plan file + the manifest's artifact entry -> numpy outputs.

Why it looks the way it does:
- TensorRT and cuda-python are imported inside ``activate`` so importing the runtime stays lean and a
  machine without them still gets a one-line ``BackendError`` with the install hint.
- Engines are not portable across TensorRT versions or GPU architectures, so ``activate`` compares the
  versions recorded at build time (artifact details) with this machine's before deserializing
  (``check_engine_compatible`` is pure so it is testable without TensorRT).
- Device buffers are sized once for the profile's max batch and pinned host buffers mirror them, so
  ``infer`` only copies the rows of the current batch and never allocates.
- With fixed shapes the enqueue is captured into a CUDA graph per batch size and replayed, which removes
  the per-kernel launch cost that dominates at batch 1 (on an H100, eager PyTorch at batch 16 cost the same
  as at batch 1: launch-bound).
CUDA calls go through ``edge_clipguard.cuda_runtime.cuda_call`` (shared with the engine builder), which
turns a non-success code into a ``CudaError`` naming the call.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...bundle import Artifact, EngineFacts, TensorSpec
from ...contract import BATCH_AXIS
from ...cuda_runtime import INSTALL_HINT, cuda_call, gpu_info, import_cudart
from ...errors import CudaError
from ..errors import BackendError, InputError
from .base import ModelFile, Runner, feed_dims, resolve_shape


class EngineMismatchError(BackendError):
    """A plan file was built by another TensorRT version or for another GPU architecture."""


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError(f"TensorRT is not installed ({exc}); {INSTALL_HINT}") from None
    return tensorrt


def _version3(version: str) -> str:
    return ".".join(str(version).split(".")[:3])


def check_engine_compatible(facts: EngineFacts | None, trt_version: str, compute_capability: str,
                            engine: str = "engine") -> None:
    """Refuse an engine whose recorded TensorRT major.minor.patch or compute capability differs from ours.

    TensorRT plans are specific to the exact TensorRT release and the GPU architecture they were built on;
    loading one elsewhere fails with an opaque deserialization error or, worse, picks wrong kernels.
    ``facts``: the artifact's ``engine_facts()`` (None when the manifest records none).
    """
    rebuild = "rebuild it on this machine with 'edge-clipguard build-engine BUNDLE'"
    if facts is None:
        raise EngineMismatchError(f"{engine}: the manifest records no tensorrt_version/compute_capability; {rebuild}")
    if _version3(facts.tensorrt_version) != _version3(trt_version):
        raise EngineMismatchError(
            f"{engine}: built with TensorRT {_version3(facts.tensorrt_version)}, this machine has TensorRT "
            f"{_version3(trt_version)} (engines are not portable across versions); {rebuild}")
    if facts.compute_capability != str(compute_capability):
        raise EngineMismatchError(
            f"{engine}: built for compute capability {facts.compute_capability} ({facts.gpu_name or 'unknown GPU'}), "
            f"this GPU is {compute_capability}; {rebuild}")


def _numpy_dtype(trt, trt_dtype) -> np.dtype:
    try:
        return np.dtype(trt.nptype(trt_dtype))
    except (AttributeError, TypeError) as exc:
        raise BackendError(f"tensor dtype {trt_dtype} has no numpy equivalent") from exc


def profile_ranges(specs: tuple[TensorSpec, ...], profile_shape) -> dict[str, tuple[int, int]]:
    """(min, max) of each symbolic axis of the inputs, read from ``profile_shape(name) -> (min, opt, max)``
    (the engine's optimization profile 0)."""
    ranges: dict[str, tuple[int, int]] = {}
    for spec in specs:
        low, _, high = profile_shape(spec.name)
        for axis, lo, hi in zip(spec.shape, low, high):
            if isinstance(axis, str):
                old = ranges.get(axis, (int(lo), int(hi)))
                ranges[axis] = (max(old[0], int(lo)), min(old[1], int(hi)))
    return ranges


class _Buffer:
    """One IO tensor: a device buffer and a pinned host mirror, both sized for the profile's largest shape.
    A call at a smaller shape uses the leading elements (TensorRT reads and writes tensors densely packed)."""

    def __init__(self, cudart, spec: TensorSpec, dtype: np.dtype, max_dims: dict[str, int]):
        self.spec = spec
        self.dtype = dtype
        capacity = int(np.prod(resolve_shape(spec, max_dims), dtype=np.int64))
        nbytes = max(capacity * dtype.itemsize, 1)
        self.host_ptr = cuda_call(cudart, cudart.cudaMallocHost(nbytes), f"cudaMallocHost({spec.name})")
        self.device_ptr = None
        raw = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctypes.POINTER(ctypes.c_uint8)), (nbytes,))
        self.host_flat = raw[: capacity * dtype.itemsize].view(dtype)
        try:
            self.device_ptr = cuda_call(cudart, cudart.cudaMalloc(nbytes), f"cudaMalloc({spec.name})")
        except (BackendError, CudaError):
            self.free(cudart)
            raise

    def host(self, shape: tuple[int, ...]) -> np.ndarray:
        """The pinned host memory as an array of ``shape`` (at most the allocated size)."""
        return self.host_flat[: int(np.prod(shape, dtype=np.int64))].reshape(shape)

    def nbytes(self, shape: tuple[int, ...]) -> int:
        return int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize

    def free(self, cudart) -> list[str]:
        errors = []
        for ptr, fn, what in ((self.device_ptr, cudart.cudaFree, "cudaFree"),
                              (self.host_ptr, cudart.cudaFreeHost, "cudaFreeHost")):
            if ptr:
                try:
                    cuda_call(cudart, fn(ptr), f"{what}({self.spec.name})")
                except (BackendError, CudaError) as exc:
                    errors.append(str(exc))
        self.device_ptr = self.host_ptr = None
        self.host_flat = None
        return errors


class TensorRTRunner(Runner):
    """Runs a TensorRT plan built by ``edge-clipguard build-engine`` (one optimization profile over batch)."""

    name = "tensorrt"

    def __init__(self, engine: ModelFile | str | Path, artifact: Artifact, inputs: tuple[TensorSpec, ...],
                 outputs: tuple[TensorSpec, ...], device_index: int = 0, use_cuda_graph: bool = True):
        super().__init__(inputs, outputs)
        self._engine_source = engine  # checked bytes (a bundle's), or a plan file read once at activate
        self.engine_path = Path(engine.name if isinstance(engine, ModelFile) else engine)
        self.artifact = artifact
        self.device_index = device_index
        self.use_cuda_graph = use_cuda_graph
        self._lock = threading.Lock()
        self._reset_state()

    def _reset_state(self) -> None:
        self._trt = self._cudart = self._logger = None
        self._runtime = self._engine = self._context = self._stream = None
        self._buffers: dict[str, _Buffer] = {}
        self._graphs: dict[tuple, tuple[Any, Any]] = {}  # input shape key -> (graph, graph exec)
        self._seen_shapes: set[tuple] = set()
        self._current_shape: tuple = ()
        self.ranges: dict[str, tuple[int, int]] = {}  # symbolic axis -> (min, max) of the engine's profile
        self.min_batch = self.max_batch = 0

    # -- activate -----------------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        self._trt, self._cudart = trt, cudart
        try:
            self._activate(trt, cudart)
        except BaseException:
            self._release()
            raise

    def _activate(self, trt, cudart) -> None:
        plan = self._engine_source
        if not isinstance(plan, ModelFile):
            if not self.engine_path.is_file():
                raise BackendError(f"{self.engine_path}: engine file not found")
            plan = ModelFile.read(self.engine_path)
        cuda_call(cudart, cudart.cudaSetDevice(self.device_index), f"cudaSetDevice({self.device_index})")
        _, cc = gpu_info(cudart, self.device_index)
        check_engine_compatible(self.artifact.engine_facts(), trt.__version__, cc, engine=str(self.engine_path))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(plan.data)
        if self._engine is None:
            raise BackendError(f"{self.engine_path}: TensorRT could not deserialize the engine (corrupt file?)")
        engine = self._engine
        io = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        wanted = {s.name for s in (*self.inputs, *self.outputs)}
        if io != wanted:
            raise BackendError(f"{self.engine_path}: engine tensors {sorted(io)} differ from the manifest's "
                               f"{sorted(wanted)}")
        for spec in self.inputs:
            if engine.get_tensor_mode(spec.name) != trt.TensorIOMode.INPUT:
                raise BackendError(f"{self.engine_path}: {spec.name!r} is not an input of the engine")
        self.ranges = profile_ranges(self.inputs, lambda name: engine.get_tensor_profile_shape(name, 0))
        self.min_batch, self.max_batch = self.ranges.get(BATCH_AXIS, (1, 1))
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendError(f"{self.engine_path}: could not create an execution context (out of GPU memory?)")
        self._stream = cuda_call(cudart, cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
                                 "cudaStreamCreateWithFlags")
        for spec in (*self.inputs, *self.outputs):
            buffer = _Buffer(cudart, spec, _numpy_dtype(trt, engine.get_tensor_dtype(spec.name)),
                             {axis: high for axis, (_, high) in self.ranges.items()})
            self._buffers[spec.name] = buffer
            if not self._context.set_tensor_address(spec.name, int(buffer.device_ptr)):
                raise BackendError(f"{self.engine_path}: set_tensor_address({spec.name!r}) failed")

    # -- infer --------------------------------------------------------------------------------------------
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dims = feed_dims(feed, self.inputs)
        for axis, size in dims.items():
            low, high = self.ranges.get(axis, (size, size))
            if not low <= size <= high:
                flag = "--batch MIN:OPT:MAX" if axis == BATCH_AXIS else "a wider profile"
                raise InputError(f"{axis} {size} is outside the engine's profile {low}..{high}; rebuild the engine "
                                 f"with {flag}")
        with self._lock:
            return self._infer_locked(feed, dims)

    def _infer_locked(self, feed: dict[str, np.ndarray], dims: dict[str, int]) -> dict[str, np.ndarray]:
        cudart, stream = self._cudart, self._stream
        # The CUDA device is per host thread: a Predictor shared by threads may be called from one that never
        # selected it (or selected another GPU), so every inference selects it first.
        cuda_call(cudart, cudart.cudaSetDevice(self.device_index), f"cudaSetDevice({self.device_index})")
        key = tuple(sorted(dims.items()))
        shape_changed = key != self._current_shape
        if shape_changed:
            self._set_shapes(dims, key)
        for spec in self.inputs:
            buf, shape = self._buffers[spec.name], resolve_shape(spec, dims)
            np.copyto(buf.host(shape), feed[spec.name], casting="same_kind")
            cuda_call(cudart, cudart.cudaMemcpyAsync(buf.device_ptr, buf.host_ptr, buf.nbytes(shape),
                                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream),
                      f"cudaMemcpyAsync(H2D {spec.name})")
        self._enqueue(key, shape_changed)
        for spec in self.outputs:
            buf, shape = self._buffers[spec.name], resolve_shape(spec, dims)
            cuda_call(cudart, cudart.cudaMemcpyAsync(buf.host_ptr, buf.device_ptr, buf.nbytes(shape),
                                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream),
                      f"cudaMemcpyAsync(D2H {spec.name})")
        cuda_call(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return {spec.name: self._buffers[spec.name].host(resolve_shape(spec, dims)).astype(spec.dtype, copy=True)
                for spec in self.outputs}

    def _set_shapes(self, dims: dict[str, int], key: tuple) -> None:
        for spec in self.inputs:
            if not self._context.set_input_shape(spec.name, resolve_shape(spec, dims)):
                raise BackendError(f"set_input_shape({spec.name!r}, {resolve_shape(spec, dims)}) rejected by TensorRT")
        for spec in self.outputs:
            got = tuple(self._context.get_tensor_shape(spec.name))
            if got != resolve_shape(spec, dims):
                raise BackendError(f"engine output {spec.name!r} has shape {got}, the manifest says "
                                   f"{resolve_shape(spec, dims)}")
        self._current_shape = key

    def _enqueue(self, key: tuple, shape_changed: bool) -> None:
        """Replay this input shape's CUDA graph, capture it, or run normally.

        A graph is captured only after one normal run at the current shapes (TensorRT finishes shape-dependent
        setup during the first enqueue after set_input_shape, which must not land inside a capture).
        """
        if self.use_cuda_graph and key in self._graphs:
            cuda_call(self._cudart, self._cudart.cudaGraphLaunch(self._graphs[key][1], self._stream),
                      "cudaGraphLaunch")
            return
        if self.use_cuda_graph and key in self._seen_shapes and not shape_changed:
            self._capture(key)
            cuda_call(self._cudart, self._cudart.cudaGraphLaunch(self._graphs[key][1], self._stream),
                      "cudaGraphLaunch")
            return
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendError(f"{self.engine_path}: execute_async_v3 failed at input shape {dict(key)}")
        self._seen_shapes.add(key)

    def _capture(self, key: tuple) -> None:
        cudart, stream = self._cudart, self._stream
        cuda_call(cudart, cudart.cudaStreamBeginCapture(
            stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture")
        try:
            ok = self._context.execute_async_v3(int(stream))
        finally:
            graph = cuda_call(cudart, cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        if not ok:
            cuda_call(cudart, cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")
            raise BackendError(f"{self.engine_path}: execute_async_v3 failed while capturing a CUDA graph; "
                               "construct the runner with use_cuda_graph=False")
        try:
            graph_exec = cuda_call(cudart, cudart.cudaGraphInstantiateWithFlags(graph, 0), "cudaGraphInstantiate")
        except (BackendError, CudaError):
            cuda_call(cudart, cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")
            raise
        self._graphs[key] = (graph, graph_exec)

    # -- deactivate ---------------------------------------------------------------------------------------
    def deactivate_impl(self) -> None:
        with self._lock:  # never free buffers under an inference running on another thread
            if self._cudart is not None:
                try:
                    cuda_call(self._cudart, self._cudart.cudaSetDevice(self.device_index), "cudaSetDevice")
                except (BackendError, CudaError):
                    pass  # _release reports what it could not free
            errors = self._release()
        if errors:
            raise BackendError(f"{self.engine_path}: freeing GPU resources: {'; '.join(errors)}")

    def _release(self) -> list[str]:
        """Free graphs, buffers and the stream (best effort: keeps going and returns the errors)."""
        cudart = self._cudart
        errors: list[str] = []
        if cudart is not None:
            for graph, graph_exec in self._graphs.values():
                for fn, handle, what in ((cudart.cudaGraphExecDestroy, graph_exec, "cudaGraphExecDestroy"),
                                         (cudart.cudaGraphDestroy, graph, "cudaGraphDestroy")):
                    try:
                        cuda_call(cudart, fn(handle), what)
                    except (BackendError, CudaError) as exc:
                        errors.append(str(exc))
            if self._stream is not None:
                try:
                    cuda_call(cudart, cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
                    cuda_call(cudart, cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
                except (BackendError, CudaError) as exc:
                    errors.append(str(exc))
            for buffer in self._buffers.values():
                errors.extend(buffer.free(cudart))
        # Drop TensorRT objects context -> engine -> runtime so their destructors run in that order.
        self._context = None
        self._engine = None
        self._runtime = None
        self._reset_state()
        return errors
