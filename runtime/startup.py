"""Time to first prediction of a fresh process: what a device app waits for after it starts.

Each measurement spawns a new Python process that imports the runtime, loads the bundle with one artifact,
backend and precision, and predicts one (text, image) pair. The time runs from just before the spawn to the
moment the child has its result: interpreter start, imports, reading and checking the bundle's bytes, the
backend's compile (or its compile-cache import) and the first inference. The child also reports its own
split (``Predictor.load``, first ``predict``; the rest is interpreter start and imports) and what the backend
compiled. "first start" runs
with an empty compile cache (a fresh temporary folder, so the user's cache neither helps nor changes);
"second start" reuses the cache the first one filled, which is what every later start of an app sees.

Run as ``python -m edge_clipguard.runtime.startup --child JSON`` by ``measure_startup``; not a user command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from .errors import ProfileError

STARTS = ("first start", "second start")  # with an empty compile cache, then with the one the first filled


@dataclass(frozen=True)
class StartupRow:
    name: str  # the artifact file
    backend: str
    device: str
    precision: str
    start: str  # one of STARTS
    seconds: float  # spawn -> first result, as the parent saw it
    start_s: float  # interpreter start and imports: seconds - load_s - first_predict_s
    load_s: float  # Predictor.load (bundle read + checks, backend start, no compile: that is lazy)
    first_predict_s: float  # the first predict (compile or cache import + inference)
    compiled: list = field(default_factory=list)  # the runner's compile log: [variant, "compiled"|"cache", s]


def measure_startup(bundle: str, backend: str, device: str, artifact: str, precision: str | None,
                    threads: int | None, label: str, verify_key: str | None = None,
                    timeout_s: float = 300.0, options: dict | None = None) -> list[StartupRow]:
    """A first and a second fresh-process start of one artifact (see the module docstring); ``options``: more
    PredictorConfig fields for the child's ``Predictor.load`` (JSON values, e.g. text_feature_cache_bytes=0)."""
    job = {"bundle": str(bundle), "backend": backend, "device": device, "artifact": artifact,
           "precision": precision, "threads": threads, "verify_key": verify_key, "options": options or {}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="clipguard-startup-") as cache:
        for start in STARTS:
            seconds, child = run_child({**job, "cache": cache}, timeout_s)
            rows.append(StartupRow(artifact, backend, device, label, start, seconds,
                                   seconds - child["load_s"] - child["first_predict_s"], child["load_s"],
                                   child["first_predict_s"], child["compiled"]))
    return rows


def run_child(job: dict, timeout_s: float = 300.0, env: dict | None = None,
              code: str | None = None, cwd: str | None = None) -> tuple[float, dict]:
    """(seconds from spawn to result, the child's report) of one fresh process running ``job``; ``env``: the
    child's environment, ``code``: Python source to run instead of this module's child, given the job as
    ``sys.argv[1]`` (a benchmark runs another revision's source tree this way), ``cwd``: the child's working
    folder (Python puts it first on the child's import path, so a benchmark that points PYTHONPATH at a source
    tree must run the child outside any other tree)."""
    started = time.monotonic()
    program = ["-m", "edge_clipguard.runtime.startup", "--child"] if code is None else ["-c", code]
    proc = subprocess.run([sys.executable, *program, json.dumps(job)], capture_output=True, text=True,
                          timeout=timeout_s, env=env, cwd=cwd)
    exited = time.monotonic()
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise ProfileError(f"startup measurement of {job['artifact']} ({job['backend']}) failed: "
                           f"{lines[-1] if lines else f'exit {proc.returncode}'}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    return result_seconds(started, child.get("result_at"), exited), child


def result_seconds(started: float, result_at: float | None, exited: float) -> float:
    """Spawn to first result. The child stamps its result with ``time.monotonic()``, one clock for every process
    on Linux, so its exit (freeing the compiled models, interpreter shutdown: ~0.08 s for the base model) is not
    counted; a stamp outside the child's lifetime (a platform whose monotonic clock is per process) falls back
    to spawn-to-exit."""
    if result_at is not None and started <= result_at <= exited:
        return result_at - started
    return exited - started


def _child(job: dict) -> dict:
    import numpy as np

    from edge_clipguard.runtime import Predictor

    imported = time.perf_counter()
    with Predictor.load(job["bundle"], backend=job["backend"], device=job["device"], precision=job["precision"],
                        threads=job["threads"], artifact=job["artifact"], verify_key=job["verify_key"],
                        compile_cache=job["cache"], **job.get("options", {})) as predictor:
        loaded = time.perf_counter()
        image = np.full((480, 640, 3), 127, dtype=np.uint8)
        predictor.predict("a red star on the table", image)
        predicted = time.perf_counter()
        result_at = time.monotonic()
        compiled = [list(entry) for entry in getattr(predictor.runner, "compile_log", [])]
    return {"load_s": loaded - imported, "first_predict_s": predicted - loaded, "compiled": compiled,
            "result_at": result_at}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--child":
        sys.exit("usage: python -m edge_clipguard.runtime.startup --child JSON (used by profile)")
    print(json.dumps(_child(json.loads(sys.argv[2]))))
