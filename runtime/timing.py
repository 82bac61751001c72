"""Latency statistics from raw ``time.perf_counter_ns`` samples (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Latency of one stage over ``n`` timed iterations, in milliseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    n: int

    @classmethod
    def from_ns(cls, samples_ns: list[int] | np.ndarray) -> Stats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        if ms.size == 0:
            raise ValueError("no timing samples")
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(ms.mean()), float(ms.min()), int(ms.size))
