"""Load test of ``edge-clipguard serve`` on 127.0.0.1, next to the in-process Predictor, in one run.

    python benchmarks/bench_serve.py BUNDLE [--seconds 10] [--rounds 2] [--max-requests 3000]
                                            [--concurrency 1,4,16] [--bad-every 16] [--tag NAME]

For each concurrency c, c client threads send one (text, JPEG) request at a time for ``--seconds`` (or until
``--max-requests``), through tritonclient http, against a server started with dynamic batching and one
without it (``--no-dynamic-batching``), and call ``Predictor.predict`` in-process; the three paths take
turns in ``--rounds`` interleaved rounds, so load from elsewhere on a shared machine hits them alike. Per
cell: requests, throughput, p50/p99 latency, errors, and the server's mean batch size (from Triton's
Prometheus counters: inferences / executions). ``--bad-every N`` adds a cell per server mode at
the highest concurrency in which every Nth request carries a corrupt image; the ``collateral`` column counts the
good requests that failed with it (a bad request is answered in its own ``error`` row, so it should be 0).
Each server is stopped with SIGTERM; its exit code and stop time are recorded. Prints the CPU model and a
table; writes JSON to benchmarks/results/bench_serve_<tag>.json. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from edge_clipguard.atomic import write_text_atomic
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.profile import cpu_model
from edge_clipguard.runtime.serve import ERROR, IMAGE, MODEL_NAME, SCORE, TEXT
from edge_clipguard.runtime.timing import Stats

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
TEXT_SENT = "This one is about the triangle. The plot is thin but the acting is wonderful."


def sample_jpeg() -> bytes:
    """A committed calibration scene (our own pixels) as a JPEG, like a camera client would send."""
    png = sorted((ROOT / "calibration_data" / "images").glob("val_*.png"))
    image = Image.open(png[0]).convert("RGB") if png else Image.new("RGB", (320, 240), (90, 140, 200))
    buf = io.BytesIO()
    image.resize((640, 480)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_cell(call, concurrency: int, seconds: float, max_requests: int, bad_every: int = 0) -> dict:
    """``concurrency`` threads call ``call(bad)`` until time or count runs out; latency per call."""
    lock = threading.Lock()
    latencies: list[int] = []
    counts = {"sent": 0, "errors": 0, "bad_sent": 0, "bad_errors": 0, "collateral": 0}
    first_errors: list[str] = []
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if counts["sent"] >= max_requests:
                    return
                counts["sent"] += 1
                bad = bool(bad_every) and counts["sent"] % bad_every == 0
                counts["bad_sent"] += bad
            start = time.perf_counter_ns()
            try:
                call(bad)
                ok, message = True, ""
            except Exception as exc:  # an error response is a result here, not a crash
                ok, message = False, str(exc)
            elapsed = time.perf_counter_ns() - start
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    counts["errors"] += 1
                    counts["bad_errors" if bad else "collateral"] += 1
                    if not bad and len(first_errors) < 3:
                        first_errors.append(message.strip().splitlines()[-1][:200] if message.strip() else "?")

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"concurrency": concurrency, "wall": time.monotonic() - started, **counts, "latencies": latencies,
            "bad_every": bad_every, "unexpected_errors": first_errors}


def merge(parts: list[dict], **extra) -> dict:
    """One table row from a cell's rounds: counts and latencies pooled, throughput over their total time."""
    latencies = [ns for p in parts for ns in p["latencies"]]
    wall = sum(p["wall"] for p in parts)
    stats = Stats.from_ns(latencies) if latencies else None
    counts = {k: sum(p[k] for p in parts) for k in ("sent", "errors", "bad_sent", "bad_errors", "collateral")}
    return {"concurrency": parts[0]["concurrency"], "bad_every": parts[0]["bad_every"], "rounds": len(parts),
            "seconds": round(wall, 2), **counts, "ok": len(latencies), "throughput": len(latencies) / wall,
            "p50_ms": stats.p50 if stats else None, "p99_ms": stats.p99 if stats else None,
            "unexpected_errors": [e for p in parts for e in p["unexpected_errors"]][:3], **extra}


def metric_totals(port: int) -> tuple[float, float]:
    """(inferences, executions) of the model from Triton's Prometheus text."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()

    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf'^{name}{{[^}}]*model="{MODEL_NAME}"[^}}]*}} (\S+)$', text, re.M))

    return total("nv_inference_count"), total("nv_inference_exec_count")


class Server:
    """``edge-clipguard serve`` in a subprocess on free loopback ports."""

    def __init__(self, args, dynamic: bool, log_path: Path):
        self.http, grpc, self.metrics = free_ports(3)
        cmd = [sys.executable, "-m", "edge_clipguard.cli", "serve", args.bundle, "--host", HOST,
               "--http-port", str(self.http), "--grpc-port", str(grpc), "--metrics-port", str(self.metrics),
               "--max-batch", str(args.max_batch), "--max-queue-delay-us", str(args.max_queue_delay_us),
               "--backend", args.backend, "--device", args.device,
               "--dynamic-batching" if dynamic else "--no-dynamic-batching"]
        cmd += ["--precision", args.precision] if args.precision else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self._local = threading.local()
        self._clients: list = []
        self._clients_lock = threading.Lock()
        deadline = time.monotonic() + args.start_timeout
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise SystemExit(f"bench_serve: server did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.25)

    def client(self):
        import tritonclient.http as httpclient

        if not hasattr(self._local, "client"):  # tritonclient.http clients must not cross threads (gevent)
            self._local.client = httpclient.InferenceServerClient(f"{HOST}:{self.http}", network_timeout=60)
            with self._clients_lock:
                self._clients.append(self._local.client)
        return self._local.client

    def ready(self) -> bool:
        try:
            return self.client().is_server_ready() and self.client().is_model_ready(MODEL_NAME)
        except Exception:
            return False

    def call(self, text: bytes, image: bytes) -> np.ndarray:
        import tritonclient.http as httpclient

        tensors = []
        for name, value in ((TEXT, text), (IMAGE, image)):
            tensor = httpclient.InferInput(name, [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[value]], dtype=np.object_))
            tensors.append(tensor)
        result = self.client().infer(MODEL_NAME, tensors)
        error = result.as_numpy(ERROR)[0, 0]
        if error:  # a bad request batched with good ones is answered in its own error row
            raise ValueError(error.decode())
        return result.as_numpy(SCORE)

    def stop(self) -> dict:
        """SIGTERM after closing our connections (Triton waits for open connections up to --drain-timeout)."""
        for client in self._clients:
            client.close()
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return {"exit_code": code, "stop_seconds": round(time.monotonic() - started, 2)}


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    lines = ["| path | batching | conc. | bad | requests | req/s | p50 ms | p99 ms | errors | collateral "
             "| mean batch |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bad = f"1/{r['bad_every']}" if r["bad_every"] else "-"
        lines.append(f"| {r['path']} | {r['batching']} | {r['concurrency']} | {bad} | {r['sent']} "
                     f"| {r['throughput']:.1f} | {fmt(r['p50_ms'], '.1f')} | {fmt(r['p99_ms'], '.1f')} | {r['errors']} "
                     f"| {r['collateral'] if r['bad_every'] else '-'} | {fmt(r['mean_batch'], '.2f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per cell (default 10)")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests per cell at most (default 3000)")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--bad-every", type=int, default=16, help="corrupt-image cell: every Nth request (0: none)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-queue-delay-us", type=int, default=2000)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per cell (default 2)")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument("--tag", default="cpu")
    parser.add_argument("--json", default=None, help="default: benchmarks/results/bench_serve_<tag>.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    image, text = sample_jpeg(), TEXT_SENT.encode()
    corrupt = image[: len(image) // 4]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs); bundle {args.bundle}; {args.seconds:g} s or "
          f"{args.max_requests} requests per cell; image {len(image)} bytes JPEG 640x480", flush=True)

    predictor = Predictor.load(args.bundle, backend=args.backend, device=args.device, precision=args.precision,
                               threads=args.threads)
    artifact = predictor.describe()
    servers: dict[str, Server] = {}
    stops: dict[str, dict] = {}
    try:
        for mode in ("dynamic", "off"):  # both up at once: an idle server costs no CPU
            servers[mode] = Server(args, mode == "dynamic", Path(f"/tmp/bench_serve_{os.getpid()}_{mode}.log"))
        calls = {"in-process": lambda bad: predictor.predict(text, corrupt if bad else image)}
        calls.update({mode: (lambda bad, s=server: s.call(text, corrupt if bad else image))
                      for mode, server in servers.items()})
        for call in calls.values():
            for _ in range(5):
                call(False)
        # Interleaved rounds: on a shared machine the load drifts; every path sees the same drift.
        parts: dict[tuple[str, int, int], list[dict]] = {}
        batches: dict[tuple[str, int, int], list[float]] = {}
        cells = [(c, 0) for c in levels]
        for rnd in range(args.rounds):
            for c, bad_every in cells + ([(max(levels), args.bad_every)] if args.bad_every else []):
                for path, call in calls.items():
                    if bad_every and path == "in-process":
                        continue
                    before = metric_totals(servers[path].metrics) if path in servers else None
                    part = run_cell(call, c, args.seconds / args.rounds, args.max_requests // args.rounds, bad_every)
                    if before is not None:
                        after = metric_totals(servers[path].metrics)
                        batches.setdefault((path, c, bad_every), []).extend(
                            [after[0] - before[0], after[1] - before[1]])
                    parts.setdefault((path, c, bad_every), []).append(part)
                    print(f"  round {rnd + 1}: {path} c={c}{f' bad 1/{bad_every}' if bad_every else ''}: "
                          f"{len(part['latencies']) / part['wall']:.1f} req/s", flush=True)
    finally:
        predictor.close()
        for mode, server in servers.items():
            stops[mode] = server.stop()
    rows = []
    for (path, c, bad_every), part_list in sorted(parts.items(), key=lambda kv: (kv[0][2], list(calls).index(kv[0][0]),
                                                                                 kv[0][1])):
        counts = batches.get((path, c, bad_every))
        inferences, executions = (sum(counts[0::2]), sum(counts[1::2])) if counts else (0, 0)
        rows.append(merge(part_list, path="in-process Predictor.predict" if path == "in-process" else "serve (HTTP)",
                          batching="-" if path == "in-process" else path,
                          mean_batch=inferences / executions if executions else None))

    load = os.getloadavg()
    print(f"\nCPU: {cpu_model()} ({os.cpu_count()} CPUs, load average {load[0]:.1f} at the end); artifact {artifact}; "
          f"max batch {args.max_batch}, queue delay {args.max_queue_delay_us} us; {args.rounds} interleaved rounds "
          f"of {args.seconds / args.rounds:g} s per cell; client threads on the same machine\n")
    print(format_table(rows))
    print("\nSIGTERM: " + ", ".join(f"{m}: exit {s['exit_code']} in {s['stop_seconds']} s" for m, s in stops.items()))
    out = Path(args.json) if args.json else RESULTS_DIR / f"bench_serve_{args.tag}.json"
    write_text_atomic(out, json.dumps({"cpu_model": cpu_model(), "cpus": os.cpu_count(), "artifact": artifact,
                                       "load_average_end": load,
                                       "args": vars(args), "rows": rows, "stops": stops,
                                       "date": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n")
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
