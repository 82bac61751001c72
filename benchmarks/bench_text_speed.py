"""Speed of the text-length and start-up changes (issue 22), on one bundle, interleaved in one run.

    python benchmarks/bench_text_speed.py BUNDLE --threads 2 --iters 60 --tag base

For each CPU path (OpenVINO INT8, OpenVINO bf16 where the CPU has it, ONNX Runtime fp32) it times a camera
loop with one short query ("a red star", 5 tokens), batch 1, decoded 640x480 frames, end to end
(tokenize, preprocess, infer, decode), two ways on the same loaded predictor:
  padded    the batch padded to the smallest of the manifest's text lengths that holds it (8 tokens): now;
  max       the batch padded to max_text_length (64 for base): what every call paid before schema 2.
and the same at batch 8 (throughput). Paths and ways are interleaved in a rotating order, so machine noise hits
them alike: compare the ratios. It then measures the time to the first prediction of two fresh processes per
path (empty, then filled compile cache; ``runtime.startup``). Prints the CPU model with the tables; writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_clipguard.errors import ClipGuardError  # noqa: E402
from edge_clipguard.runtime import Predictor  # noqa: E402
from edge_clipguard.runtime.backends.openvino_runner import has_native_bf16  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model  # noqa: E402
from edge_clipguard.runtime.startup import measure_startup  # noqa: E402

QUERY = "a red star"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Path_:
    label: str
    backend: str
    precision: str | None
    predictor: Predictor
    lengths: tuple[int, ...]  # the manifest's padding lengths

    def run(self, way: str, frames: list[np.ndarray]) -> float:
        """One end-to-end call on ``frames`` with the query padded ``way``; returns seconds."""
        stage = self.predictor.text_stage
        stage.lengths = self.lengths if way == "padded" else (self.lengths[-1],)
        started = time.perf_counter()
        self.predictor.predict_batch([QUERY] * len(frames), frames)
        return time.perf_counter() - started


def load_paths(bundle: str, threads: int) -> list[Path_]:
    wanted = [("openvino int8", "openvino", "int8"), ("ort fp32", "onnxruntime", "fp32")]
    if has_native_bf16():
        wanted.insert(1, ("openvino bf16", "openvino", "fp16"))
    paths = []
    for label, backend, precision in wanted:
        try:
            predictor = Predictor.load(bundle, backend=backend, device="cpu", precision=precision, threads=threads,
                                       text_feature_cache_bytes=0)  # the whole graph: this measures padding
        except ClipGuardError as exc:
            print(f"skipped {label}: {exc}")
            continue
        paths.append(Path_(label, backend, precision, predictor, predictor.text_stage.lengths))
    return paths


def measure(paths: list[Path_], batch: int, iters: int, warmup: int) -> dict[tuple[str, str], list[float]]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(batch)]
    runs = [(p, way) for p in paths for way in ("padded", "max")]
    times: dict[tuple[str, str], list[float]] = {(p.label, way): [] for p, way in runs}
    for i in range(warmup + iters):
        shift = i % len(runs)
        for path, way in runs[shift:] + runs[:shift]:
            seconds = path.run(way, frames)
            if i >= warmup:
                times[(path.label, way)].append(seconds)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    import _common as C

    paths = load_paths(args.bundle, args.threads)
    if not paths:
        print(f"{args.bundle}: no CPU path loads", file=sys.stderr)
        return 2
    tokens = len(paths[0].predictor.text_stage.tokenizer.encode(QUERY).ids)
    result: dict = {"bundle": args.bundle, "query": QUERY, "query_tokens": tokens, "cpu": cpu_model(),
                    "threads": args.threads, "iters": args.iters, "lengths": list(paths[0].lengths), "rows": []}
    print(f"CPU: {cpu_model()}, {args.threads} threads; query {QUERY!r} ({tokens} tokens incl. [CLS]/[SEP]); "
          f"padding lengths {list(paths[0].lengths)}")
    rows = []
    for batch in (1, 8):
        times = measure(paths, batch, args.iters if batch == 1 else max(10, args.iters // 4), args.warmup)
        for path in paths:
            padded = float(np.median(times[(path.label, "padded")])) * 1e3
            longest = float(np.median(times[(path.label, "max")])) * 1e3
            row = {"path": path.label, "batch": batch, "padded_ms": padded, "max_ms": longest,
                   "speedup": longest / padded, "padded_samples_s": batch * 1e3 / padded}
            result["rows"].append(row)
            rows.append([path.label, batch, padded, longest, longest / padded, batch * 1e3 / padded])
    print(C.table(["path", "batch", "e2e ms, padded", f"e2e ms, {paths[0].lengths[-1]} tokens", "speed-up",
                   "samples/s"], rows))
    fp32 = {r["batch"]: r["padded_ms"] for r in result["rows"] if r["path"] == "ort fp32"}
    for row in result["rows"]:
        if row["batch"] in fp32:
            row["x_ort_fp32"] = fp32[row["batch"]] / row["padded_ms"]
    starts = []
    for path in paths:
        artifact = path.predictor.artifact.file
        path.predictor.close()
        for start in measure_startup(args.bundle, path.backend, "cpu", artifact, path.precision, args.threads,
                                     path.label):
            result.setdefault("startup", []).append({"path": path.label, "start": start.start,
                                                     "seconds": start.seconds, "load_s": start.load_s,
                                                     "first_predict_s": start.first_predict_s,
                                                     "compiled": start.compiled})
            starts.append([path.label, start.start, start.seconds, start.start_s, start.load_s,
                           start.first_predict_s])
    print(C.table(["path", "start", "to first result s", "interpreter+imports", "load", "first predict"], starts))
    out = Path(args.out_dir) / f"bench_text_speed{'_' + args.tag if args.tag else ''}.json"
    print(f"json: {C.write_json(out, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
