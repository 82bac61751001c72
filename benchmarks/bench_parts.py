"""Where each model's inference time goes, by model part, on OpenVINO INT8 (issue 23.5: what holds a pruned model
back). For each bundle: end-to-end batch-1 latency (``profile``) and OpenVINO's per-node times (``profile
--layers``) summed by the model part a node comes from (text_tower, image_tower, fusion, box_head, ...), with the
int8 share of each part. Bundles run one after another in one process on the same CPU; compare rows as ratios.

    python benchmarks/bench_parts.py REF/bundle_base REF/bundle_p50_t REF/bundle_p30_t --tag reference

``--precisions int8,fp16`` times each bundle at each precision (fp16 on OpenVINO: the fp32 graph in bf16 where the
CPU has it), so a row compares INT8 with bf16 part by part (issue 22.1: which parts INT8 speeds up on this CPU);
``--rounds N`` repeats every row N times in turn and keeps each number's median, so drift hits the rows alike.

    python benchmarks/bench_parts.py REF/bundle_base_qat_full_c --precisions int8,fp16 --rounds 5 --tag int8_vs_bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.errors import ClipGuardError  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model, profile_bundle  # noqa: E402
from edge_clipguard.runtime.profile_types import ProfileRequest  # noqa: E402

PARTS = ("image_tower", "text_tower", "fusion", "box_head")


def measure(bundle: str, precision: str, threads: int, iters: int) -> dict:
    req = ProfileRequest(bundle, backend="openvino", device="cpu", precisions=(precision,), iters=iters, warmup=5,
                         threads=threads, stream=False, startup=False, layers=8, compile_cache=False)
    report = profile_bundle(req)
    row, layers = report.rows[0], report.layers[0]
    parts = {part: ms for part, ms, _ in layers.parts}
    return {"bundle": bundle, "precision": precision, "e2e_ms": row.e2e.p50, "node_ms": layers.total_ms,
            "int8_share": layers.int8_share, "parts_ms": parts,
            "parts_int8_share": {part: share for part, _, share in layers.parts}}


def median_row(rounds: list[dict]) -> dict:
    """One row from its rounds: the median of each time, the first round's int8 shares (they do not drift)."""
    parts = {part for r in rounds for part in r["parts_ms"]}
    return {**rounds[0], "e2e_ms": statistics.median(r["e2e_ms"] for r in rounds),
            "node_ms": statistics.median(r["node_ms"] for r in rounds),
            "parts_ms": {part: statistics.median(r["parts_ms"].get(part, 0.0) for r in rounds) for part in parts},
            "rounds": len(rounds)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--precisions", default="int8", help="comma list of int8, fp16, fp32 (default: int8)")
    p.add_argument("--rounds", type=int, default=1, help="times every row runs, in turn (medians kept)")
    p.add_argument("--tag", default="")
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    args = p.parse_args(argv)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or set(precisions) - {"int8", "fp16", "fp32"} or args.rounds < 1:
        print(f"bench_parts: --precisions {args.precisions!r} --rounds {args.rounds}: expected a comma list of "
              "int8, fp16, fp32 and 1 or more rounds", file=sys.stderr)
        return 2
    keys = [(bundle, precision) for bundle in args.bundles for precision in precisions]
    try:
        rounds = [[measure(bundle, precision, args.threads, args.iters) for bundle, precision in keys]
                  for _ in range(args.rounds)]
    except ClipGuardError as exc:  # a missing or broken bundle: one line, nothing written
        print(f"bench_parts: {exc}", file=sys.stderr)
        return 2
    rows = [median_row([measured[i] for measured in rounds]) for i in range(len(keys))]
    base = rows[0]
    header = ["bundle", "precision", "e2e ms", "node ms", "int8 %", *(f"{part} ms" for part in PARTS), "other ms"]
    table_rows = []
    for row in rows:
        named = [row["parts_ms"].get(part, 0.0) for part in PARTS]
        other = row["node_ms"] - sum(named)
        table_rows.append([Path(row["bundle"]).name, row["precision"], f"{row['e2e_ms']:.1f}", f"{row['node_ms']:.1f}",
                           f"{100 * row['int8_share']:.0f}", *(f"{ms:.1f}" for ms in named), f"{other:.1f}"])
    print(C.table(header, table_rows))
    for row in rows[1:]:
        shrink = {part: row["parts_ms"].get(part, 0.0) / base["parts_ms"][part] for part in PARTS
                  if base["parts_ms"].get(part)}
        print(f"{Path(row['bundle']).name} {row['precision']} vs {Path(base['bundle']).name} {base['precision']}: "
              + ", ".join(f"{part} {ratio:.2f}x" for part, ratio in shrink.items())
              + f"; node time {row['node_ms'] / base['node_ms']:.2f}x, "
              f"end to end {row['e2e_ms'] / base['e2e_ms']:.2f}x")
    print(f"OpenVINO, batch 1, {args.threads} threads on {cpu_model()}, medians of {args.rounds} round(s)")
    name = f"bench_parts{'_' + args.tag if args.tag else ''}.json"
    out = C.write_json(Path(args.out_dir) / name, {"rows": rows, "environment": C.environment(),
                                                   "threads": args.threads, "iters": args.iters,
                                                   "rounds": args.rounds})
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
