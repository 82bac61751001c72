"""The shared cuda-python helpers: every error code is checked (runs where cuda-python imports)."""

from __future__ import annotations

import pytest

from edge_clipguard.cuda_runtime import cuda_call
from edge_clipguard.errors import CudaError


def test_cuda_call_checks_every_error_code():
    cudart = pytest.importorskip("cuda.bindings.runtime")
    ok = cudart.cudaError_t.cudaSuccess
    assert cuda_call(cudart, (ok,), "x") is None
    assert cuda_call(cudart, (ok, 7), "x") == 7
    assert cuda_call(cudart, (ok, 1, 2), "x") == (1, 2)
    with pytest.raises(CudaError, match=r"cudaMalloc\(pixel_values\) failed: cudaErrorMemoryAllocation"):
        cuda_call(cudart, (cudart.cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc(pixel_values)")
    # The real call on this machine: either a device count or a named CUDA error, never a silent (err, None).
    result = cudart.cudaGetDeviceCount()
    if result[0] == ok:
        assert isinstance(cuda_call(cudart, result, "cudaGetDeviceCount"), int)
    else:
        with pytest.raises(CudaError, match="cudaGetDeviceCount failed: cudaError"):
            cuda_call(cudart, result, "cudaGetDeviceCount")
