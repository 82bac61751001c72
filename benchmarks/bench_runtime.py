"""Runtime benchmark on the CPU: every ONNX artifact of a bundle vs PyTorch eager (+ torch.compile).

    python benchmarks/bench_runtime.py BUNDLE CHECKPOINT [--batch 1,8] [--iters 100] [--compile] [--json out.json]

Prints the profile table and the ratios that matter, and writes them as JSON:
  int8_speedup: fp32 infer median / int8 infer median, per INT8 artifact and batch (ORT CPU, same run);
  vs_eager: PyTorch eager infer median / artifact infer median (> 1: the runtime is faster);
  overhead_pct: (e2e - infer) / e2e, per row — what tokenize + preprocess + decode cost around the model.
Compare ratios within one run: absolute times on shared machines swing (a 2-core box gave ORT fp32 191 ms in
one run and 47 ms in another).
"""

from __future__ import annotations

import argparse
import json
import sys

from edge_clipguard.atomic import write_text_atomic
from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime.profile import parse_batch_sizes, profile_bundle
from edge_clipguard.runtime.profile_report import format_table
from edge_clipguard.runtime.profile_types import ProfileReport, ProfileRequest


def ratios(report: ProfileReport) -> dict[str, dict[str, float]]:
    """Speed-up and overhead ratios from the measured rows (pure)."""
    rows = [r for r in report.rows if r.e2e is not None and r.stages]  # stream rows have no stages
    infer = {(r.name, r.batch): r.stages["infer"].p50 for r in rows}
    fp32 = {r.batch: infer[(r.name, r.batch)] for r in rows if r.backend == "onnxruntime" and r.precision == "fp32"}
    eager = {r.batch: infer[(r.name, r.batch)] for r in rows if r.name == "pytorch-eager"}
    out: dict[str, dict[str, float]] = {"int8_speedup": {}, "vs_eager": {}, "overhead_pct": {}}
    for r in rows:
        key = f"{r.name}@b{r.batch}"
        if r.precision == "int8" and r.batch in fp32:
            out["int8_speedup"][key] = fp32[r.batch] / infer[(r.name, r.batch)]
        if r.batch in eager and r.name != "pytorch-eager":
            out["vs_eager"][key] = eager[r.batch] / infer[(r.name, r.batch)]
        out["overhead_pct"][key] = 100.0 * r.overhead_ms / r.e2e.p50
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("checkpoint")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="also time torch.compile (slow to compile on the CPU)")
    parser.add_argument("--json", default="bench_runtime.json")
    args = parser.parse_args(argv)
    try:
        req = ProfileRequest(bundle=args.bundle, backend="onnxruntime", device="cpu",
                             batch_sizes=parse_batch_sizes(args.batch), iters=args.iters, warmup=args.warmup,
                             threads=args.threads, compare_torch=args.checkpoint, torch_compile=args.compile)
        report = profile_bundle(req, log=lambda m: print(m, file=sys.stderr))
    except ClipGuardError as exc:
        print(f"bench_runtime: error: {exc}", file=sys.stderr)
        return 2
    found = ratios(report)
    print(format_table(report))
    for name, values in found.items():
        print(f"{name}: " + (", ".join(f"{k} {v:.2f}" for k, v in values.items()) or "n/a"))
    write_text_atomic(args.json, json.dumps({**report.to_dict(), "ratios": found}, indent=2) + "\n")
    print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
