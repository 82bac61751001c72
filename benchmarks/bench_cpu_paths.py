"""CPU inference paths side by side, interleaved in one run: speed (e2e and infer, batch 1 and 8),
accuracy on held-out scenes, and a 12 MP camera photo against a scene through the same predictor.

    python benchmarks/bench_cpu_paths.py BUNDLE --checkpoint CKPT --scenes TEST.jsonl --threads 2 --tag demo

Paths: ONNX Runtime fp32 / int8-cpu (U8S8) / int8 (TensorRT-style S8S8), OpenVINO fp32 / int8 / int8-cpu /
bf16 (where the CPU has native BF16), PyTorch eager (with --checkpoint). Every timed iteration runs each path
once, in a rotating order, on the same inputs (held-out scene JPEGs, decoded inside the timed preprocess
stage), so machine noise hits all paths alike: compare the ratios, not the absolute times. Accuracy (score
Pearson r vs the human labels, mAP50 by pycocotools in original pixels) is computed once per path on every
scene row with all top-K detections kept, with a paired-bootstrap 95 % interval of each INT8/bf16 path's
mAP50 difference from ONNX Runtime fp32. ``--accuracy-only`` skips the timing (e.g. to compare a PTQ and a
QAT export of one model). Prints the CPU model with the tables; writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.bundle import read_manifest  # noqa: E402
from edge_clipguard.data.text_refs import load_manifest  # noqa: E402
from edge_clipguard.image_io import load_image  # noqa: E402
from edge_clipguard.runtime import Predictor  # noqa: E402
from edge_clipguard.runtime.decode import decode_outputs  # noqa: E402
from edge_clipguard.runtime.measure import summarize, time_iteration  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model  # noqa: E402
from edge_clipguard.runtime.profile_types import STAGES  # noqa: E402
from edge_clipguard.train.intervals import paired_interval  # noqa: E402
from edge_clipguard.train.metrics import coco_map, pearson  # noqa: E402

STAGE_KEYS = (*STAGES, "e2e")


@dataclass
class InferPath:
    """One inference path: a label, its predictor, and the infer stage (PyTorch replaces the backend's)."""

    label: str
    predictor: Predictor
    infer: object = None

    @property
    def stages(self):
        p = self.predictor
        return p.tokenize, p.preprocess, self.infer or p.infer, p.decode


def load_paths(bundle: Path, threads: int, checkpoint: str | None) -> list[InferPath]:
    """Every CPU path this machine and bundle allow (a path that cannot load is reported and skipped)."""
    files = {a.file for a in read_manifest(bundle).artifacts}
    wanted = [("ort fp32", "onnxruntime", "model.fp32.onnx", None), ("ort int8-cpu", "onnxruntime",
              "model.int8-cpu.onnx", None), ("ort int8", "onnxruntime", "model.int8.onnx", None),
              ("openvino fp32", "openvino", "model.fp32.onnx", None), ("openvino int8", "openvino",
              "model.int8.onnx", None), ("openvino int8-cpu", "openvino", "model.int8-cpu.onnx", None),
              ("openvino bf16", "openvino", "model.fp32.onnx", "fp16")]
    paths = []
    for label, backend, artifact, precision in wanted:
        if artifact not in files:
            continue
        try:
            paths.append(InferPath(label, Predictor.load(bundle, backend=backend, device="cpu", threads=threads,
                                                     artifact=artifact, precision=precision)))
        except Exception as exc:  # noqa: BLE001 - a missing backend or a CPU without bf16 is a skipped row
            print(f"skipped {label}: {str(exc).splitlines()[0]}", file=sys.stderr)
    if checkpoint:
        import torch

        from edge_clipguard.model.clipguard import DecodedClipGuard
        from edge_clipguard.train.checkpoint import load_checkpoint, restore_model
        from edge_clipguard.train.profile_torch import torch_infer_stage

        torch.set_num_threads(threads)
        payload = load_checkpoint(checkpoint)
        model, _ = restore_model(payload)
        if payload.get("modelopt_state"):  # a QAT run: its fp32 weights, as the bundle's fp32 file has them
            from edge_clipguard.train.quantize import strip_quantizers

            model = strip_quantizers(model)
        stages_from = Predictor.load(bundle, backend="onnxruntime", device="cpu", threads=threads)
        paths.append(InferPath("pytorch eager", stages_from, torch_infer_stage(DecodedClipGuard(model).eval(), "cpu")))
    return paths


def accuracy(path: InferPath, rows, batch: int = 8) -> dict:
    """Score r vs labels and mAP50 (original pixels, every top-K detection) over ``rows``."""
    p = path.predictor
    scores, detections = [], []
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        tokens, pixels = p.tokenize([r.text for r in part]), p.preprocess([r.image for r in part])
        outputs = (path.infer or p.infer)(tokens, pixels)
        for result in decode_outputs(outputs, pixels.letterboxes, tokens.truncated, p.manifest.class_names,
                                     p.manifest.score_range, 0.0, 1.0):
            scores.append(result.score)
            d = result.detections
            detections.append((np.asarray([x.box for x in d]).reshape(-1, 4), np.asarray([x.confidence for x in d]),
                               np.asarray([x.label for x in d])))
    truth = [(np.asarray(r.boxes).reshape(-1, 4), np.asarray(r.labels)) for r in rows]
    keep = [i for i, r in enumerate(rows) if r.boxes]
    truth, detections = [truth[i] for i in keep], [detections[i] for i in keep]
    det = coco_map(truth, detections, len(p.manifest.class_names))
    return {"score_r": pearson(scores, [r.score for r in rows]), "map50": det["map50"], "scores": scores,
            "truth": truth, "detections": detections}


def map50_difference_ci(a: dict, b: dict, num_classes: int, resamples: int, seed: int = 0) -> tuple[float, float]:
    """95 % paired-bootstrap interval of mAP50(a) - mAP50(b), resampling the same images for both paths
    (the export table's ``train.intervals.paired_interval``, so both read one definition of an interval)."""
    def difference(idx: np.ndarray) -> float:
        truth = [a["truth"][i] for i in idx]
        return (coco_map(truth, [a["detections"][i] for i in idx], num_classes)["map50"]
                - coco_map(truth, [b["detections"][i] for i in idx], num_classes)["map50"])

    return paired_interval(difference, len(a["truth"]), resamples, seed)


def interleaved(paths: list[InferPath], inputs: dict[str, tuple[list, list]], iters: int, warmup: int) -> dict:
    """{(label, input name): summary} timing every path once per iteration, order rotated each time."""
    samples = {(p.label, name): {k: [] for k in STAGE_KEYS} for p in paths for name in inputs}
    for i in range(warmup + iters):
        order = paths[i % len(paths):] + paths[:i % len(paths)]
        for path in order:
            for name, (texts, images) in inputs.items():
                _, times = time_iteration(path.stages, texts, images)
                if i >= warmup:
                    for key, value in zip(STAGE_KEYS, times):
                        samples[(path.label, name)][key].append(value)
    out = {}
    for key, raw in samples.items():
        stats, e2e, overhead = summarize(raw)
        out[key] = {"infer_p50": stats["infer"].p50, "infer_p99": stats["infer"].p99, "e2e_p50": e2e.p50,
                    "e2e_p99": e2e.p99, "overhead_ms": overhead, "preprocess_p50": stats["preprocess"].p50}
    return out


def camera_photo(folder: Path) -> Path:
    """A 4000x3000 JPEG (quality 90) upscaled from a real photo, as a phone camera writes them."""
    from sklearn.datasets import load_sample_images

    path = folder / "photo_12mp.jpg"
    Image.fromarray(load_sample_images().images[0]).resize((4000, 3000), Image.BICUBIC).save(path, quality=90)
    return path


def _print_ci(rows, ci_rows, resamples: int) -> None:
    if ci_rows:
        print(f"\naccuracy vs ORT fp32 on {len(rows)} held-out scenes (paired bootstrap, {resamples} resamples)")
        print(C.table(["path", "d mAP50", "95% CI", "d score r"], ci_rows))


def _accuracy_json(acc: dict) -> dict:
    return {k: {m: v for m, v in a.items() if m not in ("scores", "truth", "detections")} for k, a in acc.items()}


def _accuracy_report(args, rows, paths, acc: dict, ci_rows: list) -> int:
    """--accuracy-only: the accuracy table and JSON (bench_cpu_paths_accuracy_<tag>.json), no timing."""
    fp32_scores = acc["ort fp32"]["scores"]
    print(f"\n{args.bundle}: {len(rows)} held-out scenes from {args.scenes}")
    table = [[p.label, acc[p.label]["score_r"], acc[p.label]["map50"], pearson(acc[p.label]["scores"], fp32_scores)]
             for p in paths]
    print(C.table(["path", "score r", "mAP50", "r vs fp32"], table))
    _print_ci(rows, ci_rows, args.ci_resamples)
    out = C.RESULTS_DIR / f"bench_cpu_paths_accuracy_{args.tag}.json"
    C.write_json(out, {"args": {k: str(v) for k, v in vars(args).items()}, "environment": C.environment(),
                       "scene_rows": len(rows), "accuracy": _accuracy_json(acc)})
    print(f"json: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--checkpoint", help="adds the PyTorch eager row")
    parser.add_argument("--scenes", required=True, help="held-out scene manifest (accuracy, and timing inputs)")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--tag", default="run")
    parser.add_argument("--ci-resamples", type=int, default=100,
                        help="bootstrap resamples for the INT8 paths' mAP50 difference from ORT fp32 (0: none)")
    parser.add_argument("--accuracy-only", action="store_true", help="score r and mAP50 per path; no timing")
    parser.add_argument("--paths", help="comma-separated path labels to keep (e.g. 'ort fp32,openvino int8')")
    args = parser.parse_args(argv)
    rows = [r for r in load_manifest(args.scenes) if r.image]
    paths = load_paths(args.bundle, args.threads, args.checkpoint)
    if args.paths:
        wanted = {label.strip() for label in args.paths.split(",")} | {"ort fp32"}  # the reference stays
        unknown = sorted(wanted - {p.label for p in paths})
        if unknown:
            parser.error(f"--paths: unknown label(s) {unknown}; this bundle has {[p.label for p in paths]}")
        paths = [p for p in paths if p.label in wanted]
    print(f"CPU: {cpu_model()}, {args.threads} threads; {len(rows)} held-out scenes; {len(paths)} paths",
          file=sys.stderr)
    acc = {p.label: accuracy(p, rows) for p in paths}
    fp32_scores = acc["ort fp32"]["scores"]
    num_classes = len(paths[0].predictor.manifest.class_names)
    ci_rows = []
    for label in [p.label for p in paths if "int8" in p.label or "bf16" in p.label] if args.ci_resamples else []:
        lo, hi = map50_difference_ci(acc[label], acc["ort fp32"], num_classes, args.ci_resamples)
        acc[label]["map50_diff_vs_fp32_ci95"] = [lo, hi]
        ci_rows.append([label, acc[label]["map50"] - acc["ort fp32"]["map50"], f"[{lo:+.3f}, {hi:+.3f}]",
                        acc[label]["score_r"] - acc["ort fp32"]["score_r"]])
    if args.accuracy_only:
        return _accuracy_report(args, rows, paths, acc, ci_rows)
    batches = [int(b) for b in args.batch.split(",")]
    inputs = {f"b{b}": ([r.text for r in rows[:b]], [r.image for r in rows[:b]]) for b in batches}
    # The profile's convention: start from a decoded frame (a camera hands over pixels, not a file).
    inputs["b1 decoded"] = ([rows[0].text], [np.asarray(load_image(rows[0].image))])
    with tempfile.TemporaryDirectory() as tmp:
        photo = camera_photo(Path(tmp))
        inputs["photo"] = ([rows[0].text], [photo])
        timing = interleaved(paths, inputs, args.iters, args.warmup)
        full_decode = Predictor.load(args.bundle, backend="onnxruntime", device="cpu", threads=args.threads,
                                     fast_decode=False)
        photo_full = interleaved([InferPath("ort fp32, full decode", full_decode)], {"photo": inputs["photo"]},
                                 max(5, args.iters // 4), 2)
    base = {b: timing[("ort fp32", f"b{b}")]["e2e_p50"] for b in batches}
    base_decoded = timing[("ort fp32", "b1 decoded")]["e2e_p50"]
    table = []
    for p in paths:
        a = acc[p.label]
        for b in batches:
            t = timing[(p.label, f"b{b}")]
            table.append([p.label, b, t["infer_p50"], t["infer_p99"], t["e2e_p50"], t["e2e_p99"],
                          100 * t["overhead_ms"] / t["e2e_p50"], base[b] / t["e2e_p50"], 1000 * b / t["e2e_p50"],
                          a["score_r"], a["map50"], pearson(a["scores"], fp32_scores)])
    print(f"\nCPU: {cpu_model()}; {args.threads} threads; {args.iters} interleaved iterations after {args.warmup}; "
          f"inputs: held-out scene JPEGs (decode inside preprocess)")
    print(C.table(["path", "batch", "infer p50", "infer p99", "e2e p50", "e2e p99", "ovh %", "x ORT fp32 e2e",
                   "samples/s", "score r", "mAP50", "r vs fp32"], table))
    photo_rows = [[p.label, timing[(p.label, "b1")]["e2e_p50"], timing[(p.label, "photo")]["e2e_p50"],
                   timing[(p.label, "photo")]["e2e_p50"] / timing[(p.label, "b1")]["e2e_p50"]] for p in paths]
    photo_rows.append(["ort fp32, full decode", None, photo_full[("ort fp32, full decode", "photo")]["e2e_p50"], None])
    print("\n12 MP JPEG (4000x3000) vs a held-out scene, e2e p50 ms, batch 1")
    print(C.table(["path", "scene", "12 MP photo", "photo / scene"], photo_rows))
    decoded = [[p.label, timing[(p.label, "b1 decoded")]["infer_p50"], timing[(p.label, "b1 decoded")]["e2e_p50"],
                100 * timing[(p.label, "b1 decoded")]["overhead_ms"] / timing[(p.label, "b1 decoded")]["e2e_p50"],
                base_decoded / timing[(p.label, "b1 decoded")]["e2e_p50"]] for p in paths]
    print("\nbatch 1 from a decoded frame (HxWx3 array, as a camera gives it), ms")
    print(C.table(["path", "infer p50", "e2e p50", "ovh %", "x ORT fp32 e2e"], decoded))
    _print_ci(rows, ci_rows, args.ci_resamples)
    out = C.RESULTS_DIR / f"bench_cpu_paths_{args.tag}.json"
    C.write_json(out, {"args": {k: str(v) for k, v in vars(args).items()}, "cpu_model": cpu_model(),
                       "environment": C.environment(), "scene_rows": len(rows),
                       "accuracy": _accuracy_json(acc),
                       "timing": {f"{k[0]} | {k[1]}": v for k, v in timing.items()},
                       "photo_full_decode": photo_full[("ort fp32, full decode", "photo")], "table": table})
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
