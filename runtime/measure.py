"""Timing one pipeline: the stages (tokenize, preprocess, infer, decode) back to back, many iterations.

Used by ``profile`` for every bundle artifact and by ``train.profile_torch`` for the PyTorch reference rows,
so every row is measured by the same loop on the same inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .errors import ProfileError
from .memory import gpu_used_mb, peak_rss_mb, rss_mb
from .profile_types import STAGES, ProfileRequest, ProfileRow
from .timing import Stats

# Varied lengths (one over the tiny model's 16 tokens) so tokenize cost is realistic.
SAMPLE_TEXTS = (
    "About the stars: what a lovely, sunny afternoon.",
    "The red circle looks broken and I want a refund right now!",
    "About the crosses: meh.",
    "Honestly the triangle in the corner is the best thing I have bought this year, it arrived early, it was "
    "well packed and the colour is exactly as in the photo.",
)


def sample_inputs(batch: int, image_size: tuple[int, int], seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """Deterministic texts and non-square noise images (HxWx3 uint8) for timing."""
    rng = np.random.default_rng(seed)
    width, height = image_size
    texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(batch)]
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(batch)]
    return texts, images


Pipeline = tuple[Callable, Callable, Callable, Callable]


def time_iteration(stages: Pipeline, texts: list, images: list) -> tuple[list, tuple[int, ...]]:
    """Run the four stages once, back to back; returns (results, ns per stage + e2e in STAGES order)."""
    tokenize, preprocess, infer, decode = stages
    clock = time.perf_counter_ns
    t0 = clock()
    tokens = tokenize(texts)
    t1 = clock()
    pixels = preprocess(images)
    t2 = clock()
    outputs = infer(tokens, pixels)
    t3 = clock()
    results = decode(outputs, tokens, pixels)
    t4 = clock()
    return results, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)


def summarize(samples_ns: dict[str, list[int] | np.ndarray]) -> tuple[dict[str, Stats], Stats, float]:
    """(per-stage Stats, e2e Stats, median per-iteration overhead e2e - infer in ms) from raw samples."""
    stats = {name: Stats.from_ns(samples_ns[name]) for name in STAGES}
    overhead = float(np.median(np.asarray(samples_ns["e2e"]) - np.asarray(samples_ns["infer"])) / 1e6)
    return stats, Stats.from_ns(samples_ns["e2e"]), overhead


def measure(stages: Pipeline, texts: list[str], images: list[np.ndarray], iters: int,
            warmup: int) -> tuple[dict[str, Stats], Stats, float]:
    """Time the stages (tokenize, preprocess, infer, decode); returns (per-stage, e2e, median overhead ms)."""
    if iters < 1 or warmup < 0:
        raise ProfileError(f"--iters must be >= 1 and --warmup >= 0 (got {iters}, {warmup})")
    samples: dict[str, list[int]] = {name: [] for name in (*STAGES, "e2e")}
    for i in range(warmup + iters):
        _, times = time_iteration(stages, texts, images)
        if i >= warmup:
            for name, value in zip((*STAGES, "e2e"), times):
                samples[name].append(value)
    return summarize(samples)


def measured_row(name: str, backend: str, device: str, precision: str, batch: int, stages: Pipeline,
                 req: ProfileRequest) -> ProfileRow:
    texts, images = sample_inputs(batch, req.image_size)
    per_stage, e2e, overhead = measure(stages, texts, images, req.iters, req.warmup)
    return ProfileRow(name, backend, device, precision, batch, per_stage, e2e, overhead, batch * 1000.0 / e2e.p50,
                      **memory_columns(device))


def memory_columns(device: str, device_index: int = 0) -> dict[str, float | None]:
    """The memory fields of a ProfileRow, read now."""
    current, peak = rss_mb(), peak_rss_mb()
    return {"rss_mb": current, "peak_rss_mb": max(peak, current) if None not in (peak, current) else peak,
            "gpu_mb": gpu_used_mb(device_index) if device == "cuda" else None}


def stream_row(name: str, predictor, precision: str, batch: int, req: ProfileRequest) -> ProfileRow:
    """Throughput of ``predictor.predict_stream`` on JPEG-encoded inputs (decode included, as from a camera
    or a folder): ``iters`` batches after ``warmup`` batches; e2e is the wall time per batch."""
    import io

    from PIL import Image

    texts, images = sample_inputs(batch, req.image_size)
    encoded = []
    for array in images:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    pairs = [(texts[i % batch], encoded[i % batch]) for i in range(batch * (req.warmup + req.iters))]
    clock, marks = time.perf_counter_ns, []
    for item in predictor.predict_stream(pairs, batch_size=batch, workers=2):
        if not item.ok:
            raise ProfileError(f"stream row: item {item.index} failed: {item.error}")
        if (item.index + 1) % batch == 0:
            marks.append(clock())
    per_batch = np.diff(np.asarray(marks[max(req.warmup, 1) - 1:]))  # wall time between finished batches
    if per_batch.size == 0:
        raise ProfileError("stream row: needs --iters >= 2 when --warmup is 0")
    e2e = Stats.from_ns(per_batch)
    return ProfileRow(f"{name} (stream)", predictor.backend, predictor.device, precision, batch, {}, e2e, None,
                      batch * 1000.0 / e2e.p50, note="predict_stream, JPEG bytes in, decode overlapped",
                      **memory_columns(predictor.device))
