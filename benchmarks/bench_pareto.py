"""Smaller models side by side: size, speed and accuracy of each bundle's OpenVINO INT8 file, in one run.

    python benchmarks/bench_pareto.py --row base BUNDLE CKPT "900 steps" --row "base 50%" BUNDLE2 CKPT2 "..." \\
        --reference base --scenes TEST.jsonl --vader VADER_TEST.jsonl --threads 2 --iters 30 --tag NAME

Per row (``--row LABEL BUNDLE CHECKPOINT COMPUTE``): parameters and GFLOPs of the checkpoint's model (batch 1),
the INT8 file's size, OpenVINO INT8 end-to-end latency at batch 1 (p50) and throughput at batch 8 (images/s),
timed interleaved: every iteration runs every row once, in a rotating order, on the same held-out scene JPEGs,
so machine noise hits all rows alike (compare ratios); each row runs its whole graph, the text encoded on every
call (a bundle cut in two would otherwise cache the one benchmark text and skip its text tower). Accuracy by the
runtime (every top-K detection kept): mAP50 on the ``--scenes`` rows and score Pearson r per VADER test domain
(``--vader`` rows, blank image), with 95 % paired-bootstrap intervals of each row's mAP50 and pooled r minus the
reference row's fp32 (ONNX Runtime). ``COMPUTE`` is the row's training compute as text (steps, batch, teacher,
wall time), carried into the table.
Prints the CPU model with the tables; writes JSON and a PNG of latency against mAP50.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.image_io import load_image  # noqa: E402
from edge_clipguard.runtime.measure import summarize, time_iteration  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model  # noqa: E402
from edge_clipguard.runtime.profile_types import STAGES  # noqa: E402
from edge_clipguard.train.bundle_eval import open_predictor, predict_rows  # noqa: E402
from edge_clipguard.train.evaluate import detection_metrics  # noqa: E402
from edge_clipguard.train.intervals import map50_difference, score_r_difference  # noqa: E402
from edge_clipguard.train.metrics import per_domain_metrics  # noqa: E402
from edge_clipguard.train.run import read_manifests  # noqa: E402

INT8_FILE = "model.int8.onnx"
FP32_FILE = "model.fp32.onnx"


@dataclass
class Row:
    label: str
    bundle: Path
    checkpoint: str
    compute: str


def model_size(checkpoint: str) -> tuple[float, float]:
    """(params M, GFLOPs at batch 1) of a checkpoint's model."""
    from edge_clipguard.model.complexity import part_costs
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model

    model, _ = restore_model(load_checkpoint(checkpoint))
    total = part_costs(model)[-1]
    return total.params / 1e6, total.flops / 1e9


def accuracy(predictor, scenes, texts) -> dict:
    """Runtime predictions on the scene rows and on the VADER text rows, with per-domain score r."""
    scene_pred = predict_rows(predictor, scenes)
    text_pred = predict_rows(predictor, texts)
    truth = np.asarray([r.score for r in texts], dtype=np.float64)
    domains = per_domain_metrics(text_pred.scores, truth, [r.domain for r in texts])
    return {"scenes": scene_pred, "texts": text_pred, "truth": truth, "score_r": domains,
            "map50": detection_metrics(scene_pred, len(predictor.manifest.class_names))["map50"]}


def interleaved_latency(predictors: dict, images: list, iters: int, warmup: int) -> dict:
    """{label: {"b1_e2e_p50": ms, "b8_images_per_s": n}}, every row once per iteration in a rotating order."""
    texts = ["About the star: what a lovely evening."] * 8
    batches = {"b1": (texts[:1], images[:1]), "b8": (texts[:8], images[:8])}
    labels = list(predictors)
    samples = {(lab, b): {k: [] for k in (*STAGES, "e2e")} for lab in labels for b in batches}
    for i in range(warmup + iters):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            p = predictors[label]
            for name, (t, ims) in batches.items():
                _, times = time_iteration((p.tokenize, p.preprocess, p.infer, p.decode), t, ims)
                if i >= warmup:
                    for key, value in zip((*STAGES, "e2e"), times):
                        samples[(label, name)][key].append(value)
    out = {}
    for label in labels:
        b1 = summarize(samples[(label, "b1")])[1]
        b8 = summarize(samples[(label, "b8")])[1]
        out[label] = {"b1_e2e_p50_ms": b1.p50, "b1_e2e_p99_ms": b1.p99, "b8_e2e_p50_ms": b8.p50,
                      "b8_images_per_s": 8000.0 / b8.p50}
    return out


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in rows:
        if r["b1_e2e_p50_ms"] is None:
            continue
        ax.scatter(r["b1_e2e_p50_ms"], 100 * r["map50"], s=30)
        ax.annotate(r["label"], (r["b1_e2e_p50_ms"], 100 * r["map50"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel("OpenVINO INT8 end-to-end latency, batch 1, p50 (ms)")
    ax.set_ylabel("mAP50 (%) on held-out scenes")
    ax.set_title(f"latency vs accuracy ({cpu_model()})", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--row", nargs=4, action="append", required=True, metavar=("LABEL", "BUNDLE", "CKPT", "COMPUTE"))
    p.add_argument("--reference", required=True, help="the row whose fp32 file every interval compares against")
    p.add_argument("--scenes", required=True, help="held-out scene manifest (mAP50)")
    p.add_argument("--vader", required=True, help="VADER test rows (score r per domain)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--resamples", type=int, default=300)
    p.add_argument("--tag", default="")
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    args = p.parse_args(argv)
    rows = [Row(label, Path(bundle), ckpt, compute) for label, bundle, ckpt, compute in args.row]
    by_label = {r.label: r for r in rows}
    if args.reference not in by_label:
        p.error(f"--reference {args.reference!r} is not a --row label ({list(by_label)})")
    ref = by_label[args.reference]
    predictors = {r.label: open_predictor(r.bundle, "openvino", artifact=INT8_FILE, threads=args.threads,
                                          whole_graph=True) for r in rows}
    num_classes = len(predictors[ref.label].manifest.class_names)
    scenes = read_manifests((args.scenes,), num_classes)
    texts = read_manifests((args.vader,), num_classes)
    print(f"CPU: {cpu_model()}; {len(scenes)} scenes, {len(texts)} VADER test rows; OpenVINO INT8, "
          f"{args.threads} threads", file=sys.stderr)
    with open_predictor(ref.bundle, "onnxruntime", artifact=FP32_FILE, threads=args.threads) as fp32:
        reference = accuracy(fp32, scenes, texts)
    acc = {label: accuracy(pred, scenes, texts) for label, pred in predictors.items()}
    images = [load_image(scenes[i % len(scenes)].image) for i in range(8)]
    speed = interleaved_latency(predictors, images, args.iters, args.warmup)
    for pred in predictors.values():
        pred.close()

    domains = sorted(d for d in reference["score_r"] if d != "pooled")
    table, out_rows = [], []
    ref_row = {"label": f"{ref.label} fp32 (ORT)", "map50": reference["map50"],
               "score_r": {d: reference["score_r"][d]["pearson"] for d in [*domains, "pooled"]}}
    for r in rows:
        a = acc[r.label]
        params, gflops = model_size(r.checkpoint)
        d_map = map50_difference(a["scenes"], reference["scenes"], num_classes, args.resamples)
        d_r = score_r_difference(a["texts"], reference["texts"], a["truth"], args.resamples)
        row = {"label": r.label, "compute": r.compute, "params_m": params, "gflops": gflops,
               "int8_mb": (r.bundle / INT8_FILE).stat().st_size / 2**20, **speed[r.label],
               "map50": a["map50"], "map50_minus_ref_fp32": d_map.to_dict(),
               "score_r": {d: a["score_r"][d]["pearson"] for d in [*domains, "pooled"]},
               "score_r_minus_ref_fp32": d_r.to_dict()}
        out_rows.append(row)
        table.append([r.label, r.compute, f"{params:.1f}", f"{gflops:.2f}", f"{row['int8_mb']:.1f}",
                      f"{row['b1_e2e_p50_ms']:.1f}", f"{row['b8_images_per_s']:.1f}",
                      f"{100 * a['map50']:.1f}",
                      f"{100 * d_map.delta:+.1f} [{100 * d_map.low:+.1f},{100 * d_map.high:+.1f}]",
                      *[f"{row['score_r'][d]:.3f}" for d in domains], f"{row['score_r']['pooled']:.3f}",
                      f"{d_r.delta:+.3f} [{d_r.low:+.3f},{d_r.high:+.3f}]"])
    base_b1 = speed[ref.label]["b1_e2e_p50_ms"]
    header = ["model", "training", "params M", "GFLOPs", "INT8 MB", "b1 e2e ms", "b8 img/s", "mAP50",
              f"d mAP50 vs {ref.label} fp32", *[f"r {d}" for d in domains], "r pooled", "d r pooled"]
    print(f"\nCPU: {cpu_model()}; OpenVINO INT8 ({INT8_FILE}), {args.threads} threads, interleaved, {args.iters} "
          f"iterations; {len(scenes)} held-out scenes, {len(texts)} VADER test rows; intervals: 95 % paired "
          f"bootstrap, {args.resamples} resamples")
    print(C.table(header, table))
    print(f"{ref.label} fp32 (ONNX Runtime): mAP50 {100 * reference['map50']:.1f}, r pooled "
          f"{ref_row['score_r']['pooled']:.3f}; speed-up vs {ref.label} INT8 at batch 1: "
          + ", ".join(f"{r['label']} {base_b1 / r['b1_e2e_p50_ms']:.2f}x" for r in out_rows))
    name = f"bench_pareto{('_' + args.tag) if args.tag else ''}"
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    png = plot(out_rows, Path(args.out_dir) / f"{name}.png")
    path = C.write_json(Path(args.out_dir) / f"{name}.json", {
        "args": vars(args), "environment": C.environment(), "reference_fp32": ref_row, "rows": out_rows})
    print(f"json: {path}\npng: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
