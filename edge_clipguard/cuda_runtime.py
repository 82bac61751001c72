"""The CUDA runtime through cuda-python, shared by the TensorRT engine builder (export) and runner (runtime).

Neutral ground: export must not borrow from the runtime's backends, and the runtime must not import
export, so the few helpers both need live here. cuda-python is imported only when called.
Every cuda-python call returns ``(error, *values)``; ``cuda_call`` turns a non-success code into a
``CudaError`` naming the call, so no error code is silently dropped.
"""

from __future__ import annotations

from typing import Any

from .errors import CudaError

INSTALL_HINT = "install the TensorRT extra on the target: pip install 'edge-clipguard[trt]' (tensorrt + cuda-python)"


def import_cudart():
    """The CUDA runtime module of cuda-python: ``cuda.bindings.runtime`` (>= 12.6) or ``cuda.cudart`` (older)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise CudaError(f"cuda-python is not installed ({exc}); {INSTALL_HINT}") from None
    return cudart


def cuda_call(cudart, result: tuple, what: str) -> Any:
    """Check a cuda-python ``(err, *values)`` result; return None, the single value, or the tuple of values."""
    err, values = result[0], result[1:]
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        raise CudaError(f"CUDA call {what} failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def gpu_info(cudart, device_index: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of CUDA device ``device_index``."""
    prop = cuda_call(cudart, cudart.cudaGetDeviceProperties(device_index), f"cudaGetDeviceProperties({device_index})")
    name = prop.name
    if isinstance(name, bytes):
        name = name.split(b"\x00", 1)[0].decode(errors="replace")
    return str(name).strip(), f"{prop.major}.{prop.minor}"
