"""Clip-mode benchmark: none / norm / adaptive / per-modality, N seeds, at a normal and an aggressive LR.

    python benchmarks/bench_clip_modes.py [--config tiny|base] [--seeds 5] [--steps 100] [--lr 3e-4]
        [--lr-mults 1,30] [--modes none,norm,adaptive,per-modality] [--out-dir benchmarks/results]

Every run of one seed starts from the same initial weights and sees the same batches in the same
order; only the clip mode and the LR differ. Each run trains ``--steps`` optimiser steps with the
library Trainer (AdamW, warm-up + cosine, ``ClipConfig(mode, max_norm, percentile)``) and
validates at step 0 and every ``--eval-every`` steps on a fixed validation set (val scenes + VADER
val sentences; val loss = the Trainer's weighted loss).

Definitions (also written into the JSON):
  diverged: any step with a non-finite training loss, any step skipped for non-finite gradients, or
            any validation loss that is non-finite or > ``--diverge-factor`` x the run's step-0
            validation loss. A diverged run is stopped at that point.
  target:   ``--target-loss`` if given, else ``(1 + --target-slack)`` x the median final validation
            loss of the (clip none, LR x1) runs -- "the quality the unclipped baseline reaches".
  steps to target: the first validated step whose validation loss <= target (resolution
            ``--eval-every``); runs that never get there count as not reached.
  clipped:  fraction of optimiser steps on which the clipper scaled any gradient.
Final metrics are taken on the same validation set after the last step: val loss, score Pearson r
(all val rows), pycocotools mAP50 on the val scenes.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    p.add_argument("--tag", default="", help="suffix of the JSON name")
    p.add_argument("--work-dir", default="/tmp/bench_clip_modes", help="run folders (steps.jsonl per run)")
    p.add_argument("--data-dir", default=str(C.default_vader_dir().parent / "bench"))
    p.add_argument("--config", default="tiny")
    p.add_argument("--modes", default="none,norm,adaptive,per-modality")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-4, help="the normal LR (the trainer's default)")
    p.add_argument("--lr-mults", default="1,30", help="LR multipliers; x1 is the normal LR")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--max-norm", type=float, default=1.0, help="norm / per-modality limit; adaptive's start value")
    p.add_argument("--percentile", type=float, default=90.0)
    p.add_argument("--diverge-factor", type=float, default=2.0)
    p.add_argument("--target-loss", type=float, default=None)
    p.add_argument("--target-slack", type=float, default=0.02)
    p.add_argument("--train-scenes", type=int, default=1024)
    p.add_argument("--val-scenes", type=int, default=128)
    p.add_argument("--vader-train", type=int, default=1024, help="VADER train sentences mixed in (0: all)")
    p.add_argument("--vader-val", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--from-json", help="only re-print the table of a finished run's JSON (no training)")
    return p.parse_args(argv)


def divergence_check(factor: float):
    def stop_if(row: dict, val: dict | None, step0: dict) -> str | None:
        initial = step0["val_loss"]
        if not math.isfinite(row["loss"]):
            return f"non-finite train loss at step {row['step']}"
        if row["skipped"]:
            return f"non-finite gradients (skipped) at step {row['step']}"
        if val is not None:
            v = val["val_loss"]
            if not math.isfinite(v) or v > factor * initial:
                return f"val loss {v:.3g} > {factor} x initial {initial:.3g} at step {row['step']}"
        return None

    return stop_if


def one_run(args, model_cfg, tokenizer, data, sets, mode: str, lr: float, seed: int, device) -> dict:
    from edge_clipguard.model import build_model
    from edge_clipguard.train.clipping import ClipConfig
    from edge_clipguard.train.trainer import TrainerConfig

    torch.manual_seed(seed)
    model = build_model(model_cfg)
    tcfg = TrainerConfig(epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=lr,
                         warmup_steps=args.warmup, seed=seed, progress=False,
                         clip=ClipConfig(mode=mode, max_norm=args.max_norm, percentile=args.percentile))
    out = Path(args.work_dir) / f"{mode}_lr{lr:g}_s{seed}"
    result = C.train(model, model_cfg, tokenizer, data, tcfg, out, device=device, eval_every=args.eval_every,
                     stop_if=divergence_check(args.diverge_factor), save=False, sets=sets)
    rows = result.rows
    initial = result.val_curve[0][1]["val_loss"]
    final_val = result.val_curve[-1][1]["val_loss"]
    metrics = (C.quick_metrics(model, sets[1], data.val, args.batch_size, device)
               if math.isfinite(final_val) else {})
    norms = [r["grad_norm_total"] for r in rows if math.isfinite(r["grad_norm_total"])]
    return {
        "mode": mode, "lr": lr, "seed": seed, "steps": result.steps, "seconds": result.seconds,
        "diverged": result.stopped_early is not None, "diverged_reason": result.stopped_early,
        "initial_val_loss": initial, "final_val_loss": final_val,
        "val_curve": [(s, v["val_loss"]) for s, v in result.val_curve],
        "clipped_fraction": sum(bool(r["clipped"]) for r in rows) / max(1, len(rows)),
        "skipped_steps": sum(bool(r["skipped"]) for r in rows),
        "nonfinite_loss_steps": sum(not math.isfinite(r["loss"]) for r in rows),
        "grad_norm_median": statistics.median(norms) if norms else None,
        "grad_norm_max": max(norms) if norms else None,
        "grad_norm_median_per_group": {g: statistics.median([r[f"grad_norm_{g}"] for r in rows])
                                       for g in ("text", "image", "fusion") if rows},
        **{f"final_{k}": v for k, v in metrics.items()},
    }


def steps_to(curve, target: float):
    for step, loss in curve:
        if step > 0 and math.isfinite(loss) and loss <= target:
            return step
    return None


def summarise(runs: list[dict], target: float, modes: list[str], lrs: list[float], steps: int) -> list[list]:
    def mean(values):
        values = [v for v in values if v is not None and math.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    def sd(values):
        values = [v for v in values if v is not None and math.isfinite(v)]
        return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")

    table = []
    for lr in lrs:
        for mode in modes:
            group = [r for r in runs if r["mode"] == mode and r["lr"] == lr]
            if not group:
                continue
            reached = [steps_to(r["val_curve"], target) for r in group]
            hit = [s for s in reached if s is not None]
            ref = {r["seed"]: r["final_val_loss"] for r in runs if r["mode"] == "none" and r["lr"] == lr}
            paired = [(r["final_val_loss"], ref[r["seed"]]) for r in group if r["seed"] in ref]
            better = (f"{sum(a < b for a, b in paired)}/{len(paired)}"
                      if paired and mode != "none" else "-")
            table.append([
                mode, f"{lr:g}", f"{sum(r['diverged'] for r in group)}/{len(group)}",
                f"{len(hit)}/{len(group)}", f"{statistics.median(hit):g}" if hit else None,
                f"{mean([r['final_val_loss'] for r in group]):.4f}±{sd([r['final_val_loss'] for r in group]):.4f}",
                mean([r.get("final_score_pearson") for r in group]), mean([r.get("final_map50") for r in group]),
                mean([r["clipped_fraction"] for r in group]), mean([r["grad_norm_median"] for r in group]),
                sum(r["skipped_steps"] for r in group), better,
            ])
    return table


HEADER = ["clip", "lr", "diverged", "reached", "steps_to_target(med)", "final_val_loss(mean±sd)", "score_r",
          "mAP50", "clipped_frac", "gnorm_med", "skipped", "lower_val_than_none(paired seeds)"]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:
        import json

        saved = json.loads(Path(args.from_json).read_text())
        a, d = saved["args"], saved["definitions"]
        lrs = [a["lr"] * float(m) for m in a["lr_mults"].split(",")]
        print(f"clip modes, config {a['config']}, {a['seeds']} seeds, {a['steps']} steps, batch {a['batch_size']}, "
              f"max_norm {a['max_norm']}")
        print(f"target val loss {d['target_val_loss']:.4f} = {d['target']}; diverged = {d['diverged']}")
        runs = [{**r, "val_curve": [(s, float("nan") if v is None else float(v)) for s, v in r["val_curve"]]}
                for r in saved["runs"]]
        print(C.table(HEADER, summarise(runs, d["target_val_loss"], a["modes"].split(","), lrs, a["steps"])))
        return 0
    from edge_clipguard.config import load_config
    from edge_clipguard.text.tokenizer import default_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = C.pick_device(args.device)
    model_cfg = load_config(args.config)
    tokenizer = default_tokenizer(model_cfg.text.max_length)
    data = C.load_data(args.data_dir, model_cfg.num_classes, args.train_scenes, args.val_scenes, 0,
                       args.vader_train, args.vader_val, 1)
    data.test_vader = []  # no test data here: validation only
    sets = C.make_datasets(data, tokenizer, model_cfg.image_size, resize=model_cfg.resize)
    modes = args.modes.split(",")
    lrs = [args.lr * float(m) for m in args.lr_mults.split(",")]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"config {args.config}, device {device}, {data.describe()}", file=sys.stderr)
    runs, started = [], time.perf_counter()
    total = len(modes) * len(lrs) * len(seeds)
    for seed in seeds:  # seed-major: a partial run still covers every mode and LR
        for lr in lrs:
            for mode in modes:
                run = one_run(args, model_cfg, tokenizer, data, sets, mode, lr, seed, device)
                runs.append(run)
                print(f"[{len(runs)}/{total}] {mode:<12} lr {lr:<8g} seed {seed}: val {run['initial_val_loss']:.4f}"
                      f" -> {run['final_val_loss']:.4f}, clipped {run['clipped_fraction']:.2f}, "
                      f"diverged {run['diverged']} ({run['seconds']:.0f}s, total "
                      f"{time.perf_counter() - started:.0f}s)", file=sys.stderr)
    if args.target_loss is not None:
        target, target_def = args.target_loss, "--target-loss"
    else:
        base_mode = "none" if "none" in modes else modes[0]
        base = [r["final_val_loss"] for r in runs if r["mode"] == base_mode and r["lr"] == lrs[0]
                and math.isfinite(r["final_val_loss"])]
        target = (1 + args.target_slack) * statistics.median(base) if base else float("nan")
        target_def = f"(1 + {args.target_slack}) x median final val loss of clip={base_mode} at lr {lrs[0]:g}"
    rows = summarise(runs, target, modes, lrs, args.steps)
    print(f"\nclip modes, config {args.config}, {len(seeds)} seeds, {args.steps} steps, batch {args.batch_size}, "
          f"max_norm {args.max_norm}, device {device}")
    print(f"target val loss {target:.4f} = {target_def}; diverged = non-finite loss/grad or val > "
          f"{args.diverge_factor} x initial")
    print(C.table(HEADER, rows))
    name = f"bench_clip_modes_{args.config}{('_' + args.tag) if args.tag else ''}.json"
    path = C.write_json(Path(args.out_dir) / name, {
        "args": vars(args), "environment": C.environment(), "data": data.describe(),
        "definitions": {"diverged": f"non-finite train loss, skipped step, or val loss > {args.diverge_factor} x "
                                    "step-0 val loss (run stopped there)",
                        "target": target_def, "target_val_loss": target,
                        "steps_to_target": f"first validated step (every {args.eval_every}) with val loss <= target",
                        "clipped_fraction": "fraction of optimiser steps where the clipper scaled gradients"},
        "header": HEADER, "table": rows, "runs": runs, "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
