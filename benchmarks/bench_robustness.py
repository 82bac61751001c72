"""Robustness: mAP50 on the normal test scenes and on each shifted set, score r per VADER domain, per model.

    python benchmarks/bench_robustness.py --model "no aug" BUNDLE --model "aug" BUNDLE2 --scenes-dir SCENES \\
        --vader VADER_TEST.jsonl [--count 512] [--backend openvino --artifact model.int8.onnx] --tag NAME

Renders (once, seeded) ``--count`` test scenes and the same count of each ``data scenes --shift`` set into
``--scenes-dir``, then scores every bundle by the runtime (every top-K detection kept): mAP50 per set with a
95 % bootstrap interval, and, from the second model on, its paired-bootstrap difference from the first model on
the same images; score Pearson r per VADER test domain (text rows, blank image). Prints the CPU model; writes JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.data.scenes import generate_scenes  # noqa: E402
from edge_clipguard.data.shifts import SHIFTS, shifted_split_name  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model  # noqa: E402
from edge_clipguard.train.bundle_eval import open_predictor, predict_rows  # noqa: E402
from edge_clipguard.train.evaluate import detection_metrics  # noqa: E402
from edge_clipguard.train.intervals import map50_difference, metric_intervals, score_r_difference  # noqa: E402
from edge_clipguard.train.metrics import per_domain_metrics  # noqa: E402
from edge_clipguard.train.run import read_manifests  # noqa: E402


def test_sets(scenes_dir: Path, count: int, seed: int) -> dict[str, Path]:
    """{"normal" | shift: manifest}, rendered on first use (a set that already holds ``count`` rows is kept)."""
    sets = {}
    for shift in (None, *SHIFTS):
        manifest = scenes_dir / f"{shifted_split_name('test', shift)}.jsonl"
        if not manifest.is_file() or len(manifest.read_text().splitlines()) < count:
            generate_scenes(scenes_dir, count, seed, "test", C.default_vader_dir(), shift=shift)
        sets[shift or "normal"] = manifest
    return sets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs=2, action="append", required=True, metavar=("LABEL", "BUNDLE"))
    p.add_argument("--scenes-dir", required=True, help="test scenes and shifted sets are rendered here")
    p.add_argument("--vader", required=True, help="VADER test rows (score r per domain)")
    p.add_argument("--count", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="openvino")
    p.add_argument("--artifact", default="model.int8.onnx")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resamples", type=int, default=300)
    p.add_argument("--tag", default="")
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    args = p.parse_args(argv)
    sets = test_sets(Path(args.scenes_dir), args.count, args.seed)
    results: dict = {}
    predictions: dict = {}
    text_predictions: dict = {}
    for label, bundle in args.model:
        with open_predictor(bundle, args.backend, artifact=args.artifact, threads=args.threads) as predictor:
            classes = len(predictor.manifest.class_names)
            texts = read_manifests((args.vader,), classes)
            text_pred = predict_rows(predictor, texts)
            text_predictions[label] = text_pred
            truth = np.asarray([r.score for r in texts], dtype=np.float64)
            domains = per_domain_metrics(text_pred.scores, truth, [r.domain for r in texts])
            results[label] = {"score_r": {d: m["pearson"] for d, m in domains.items()}, "sets": {}}
            for name, manifest in sets.items():
                rows = read_manifests((str(manifest),), classes)[:args.count]
                pred = predict_rows(predictor, rows)
                predictions[(label, name)] = pred
                ci = metric_intervals(pred, np.full(len(rows), np.nan), classes, args.resamples)["map50"]
                results[label]["sets"][name] = {"map50": detection_metrics(pred, classes)["map50"],
                                                "map50_ci95": list(ci)}
    first = args.model[0][0]
    for label, _ in args.model[1:]:
        for name in sets:
            diff = map50_difference(predictions[(label, name)], predictions[(first, name)], classes, args.resamples)
            results[label]["sets"][name][f"minus_{first}"] = diff.to_dict()
        d_r = score_r_difference(text_predictions[label], text_predictions[first], truth, args.resamples)
        results[label][f"score_r_pooled_minus_{first}"] = d_r.to_dict()

    header = ["model", *[f"mAP50 {name}" for name in sets], *[f"r {d}" for d in results[first]["score_r"]]]
    table = []
    for label, _ in args.model:
        res = results[label]
        cells = []
        for name in sets:
            s = res["sets"][name]
            cell = f"{100 * s['map50']:.1f} [{100 * s['map50_ci95'][0]:.1f},{100 * s['map50_ci95'][1]:.1f}]"
            if f"minus_{first}" in s:
                d = s[f"minus_{first}"]
                cell += f" d {100 * d['delta']:+.1f} [{100 * d['low']:+.1f},{100 * d['high']:+.1f}]"
            cells.append(cell)
        d_r = res.get(f"score_r_pooled_minus_{first}")
        pooled = "" if d_r is None else f" d {d_r['delta']:+.3f} [{d_r['low']:+.3f},{d_r['high']:+.3f}]"
        table.append([label, *cells, *[f"{v:.3f}" for v in res["score_r"].values()][:-1],
                      f"{res['score_r']['pooled']:.3f}{pooled}"])
    print(f"\nCPU: {cpu_model()}; {args.backend} {args.artifact}; {args.count} scenes per set; intervals: 95 % "
          f"bootstrap ({args.resamples} resamples), d = paired difference from '{first}'")
    print(C.table(header, table))
    name = f"bench_robustness{('_' + args.tag) if args.tag else ''}.json"
    path = C.write_json(Path(args.out_dir) / name, {"args": vars(args), "environment": C.environment(),
                                                    "results": results})
    print(f"json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
