"""Memory of this process, for ``profile``: on edge devices memory runs out before time does.

Resident set size from /proc (Linux) or ``resource`` elsewhere; the process peak from ``getrusage``
(kilobytes on Linux, bytes on macOS); used GPU memory from the CUDA runtime when cuda-python and a GPU
are there. Every function returns None where the platform cannot tell, never raises.
"""

from __future__ import annotations

import os
import sys


def rss_mb() -> float | None:
    """Current resident set size in MB."""
    current = _statm_rss_mb()
    return current if current is not None else _max_rss_mb()


def peak_rss_mb() -> float | None:
    """Peak resident set size of the process so far in MB (it only grows). The kernel updates its high-water
    mark lazily, so a fresh reading of the current size can be above it: the peak is the larger of the two."""
    peak, current = _max_rss_mb(), _statm_rss_mb()
    return max(peak, current) if peak is not None and current is not None else peak


def _statm_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _max_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def gpu_used_mb(device_index: int = 0) -> float | None:
    """Memory in use on CUDA device ``device_index`` (all processes) in MB, or None without CUDA."""
    try:
        from ..cuda_runtime import cuda_call, import_cudart

        cudart = import_cudart()
        cuda_call(cudart, cudart.cudaSetDevice(device_index), "cudaSetDevice")
        free, total = cuda_call(cudart, cudart.cudaMemGetInfo(), "cudaMemGetInfo")
        return (total - free) / 1e6
    except Exception:  # no cuda-python, no GPU, no driver: the column stays empty
        return None
