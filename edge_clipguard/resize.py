"""Pillow's bilinear resize, cut into horizontal bands that run on two threads.

Why: on the fastest CPU path (OpenVINO INT8, ~10 ms per base inference) Pillow's resize of a 320 px
scene was the largest piece of runtime overhead (0.8-1.0 ms, single-threaded, no SIMD). Pillow
releases the GIL while it resamples, and its ``box=`` argument resamples any band of rows with the
window of the whole image, so two bands on two threads do the same work in about half the time.

The result differs from one full ``Image.resize`` by at most 1 grey level (float rounding of the band
boundaries moves Pillow's fixed-point weights by one step on some pixels). It does not depend on the
machine: the number of bands is the constant ``BANDS``, not the core count, and only how many of them
run at once does. Training and the runtime both call this (``preprocess.letterbox``), so the model sees
the same pixels in both.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

BANDS = 2  # fixed, so the pixels are the same on every machine
MIN_BAND_ROWS = 32  # below this a thread hand-off costs more than it saves

_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def band_rows(out_height: int, bands: int = BANDS) -> list[tuple[int, int]]:
    """Output row ranges [start, stop) of each band: even cuts, one band for short outputs."""
    bands = max(1, min(bands, out_height // MIN_BAND_ROWS))
    cuts = [round(out_height * i / bands) for i in range(bands + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _worker_pool() -> ThreadPoolExecutor | None:
    """One helper thread per process (recreated after a fork: a forked pool has no live threads)."""
    global _pool, _pool_pid
    if (os.cpu_count() or 1) < 2:
        return None
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=BANDS - 1, thread_name_prefix="clipguard-resize")
            _pool_pid = os.getpid()
        return _pool


def resize_into(image: Image.Image, out: np.ndarray) -> None:
    """Bilinear-resize ``image`` (RGB) into ``out`` (H x W x 3 uint8, a view is fine), band by band."""
    out_h, out_w = out.shape[:2]
    width, height = image.size
    row_scale = height / out_h

    def band(rows: tuple[int, int]) -> None:
        start, stop = rows
        box = (0.0, start * row_scale, float(width), stop * row_scale)
        out[start:stop] = np.asarray(image.resize((out_w, stop - start), Image.BILINEAR, box=box))

    bands = band_rows(out_h)
    pool = _worker_pool() if len(bands) > 1 else None
    if pool is None:
        for rows in bands:
            band(rows)
        return
    pending = [pool.submit(band, rows) for rows in bands[1:]]
    band(bands[0])
    for future in pending:
        future.result()
