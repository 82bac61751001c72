"""Distillation: the ``small`` student trained with and without a ``base`` teacher, same steps, next to
the teacher: held-out per-domain score r, mAP50, parameters, GFLOPs, ORT fp32 and INT8 CPU latency.

Both students start from the same seed and pretrained towers and see the same batches; the one with
the teacher adds ``distill_score`` and ``distill_heatmap`` (train/distill.py) to the ground-truth
terms. Evaluation: held-out VADER test sentences (text-only) plus held-out test scenes (image + a
VADER test sentence); r per VADER domain over both, mAP50 over the scenes.

Latency: each model exported with ``export_onnx`` (the decoded graph the bundle ships), batch 1,
ONNX Runtime CPU, ``--threads`` intra-op threads, median of ``--iters``; INT8 is the bundle's ORT CPU
twin (``write_cpu_int8``, U8S8 QDQ on Conv/MatMul/Gemm) calibrated on a few training scenes: its
latency is measured, its accuracy is not.

    python benchmarks/bench_distill.py --teacher /tmp/ecg_demo/run/last.pt --steps 60 --threads 1 --iters 10 --no-int8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def ort_latency(path: Path, cfg, feed: dict, threads: int, iters: int) -> float:
    """Median inference ms of an ONNX file run by the runtime's own ONNX Runtime runner (CPU, ``threads``)."""
    from edge_clipguard.export.manifest_builder import graph_specs
    from edge_clipguard.runtime.backends.onnxruntime_runner import OnnxRuntimeRunner, OrtConfig

    inputs, outputs = graph_specs(cfg)
    with OnnxRuntimeRunner(path, inputs, outputs, OrtConfig(intra_op_threads=threads)) as runner:
        for _ in range(3):
            runner.infer(feed)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            runner.infer(feed)
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def latencies(model, calib_rows, tokenizer, threads: int, iters: int, int8: bool) -> dict:
    from edge_clipguard.contract import INPUT_NAMES
    from edge_clipguard.data.dataset import ManifestDataset, collate
    from edge_clipguard.export.onnx_export import export_onnx
    from edge_clipguard.export.ort_cpu_int8 import write_cpu_int8

    dataset = ManifestDataset(calib_rows, tokenizer, model.cfg.image_size, model.cfg.resize)
    feeds = []
    for i in range(len(dataset)):
        batch = collate([dataset[i]])
        feeds.append({k: batch[k].numpy() for k in INPUT_NAMES})
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model.eval(), Path(tmp) / "model.fp32.onnx")
        out["onnx_fp32_mb"] = fp32.stat().st_size / 1e6
        out["ort_fp32_ms"] = ort_latency(fp32, model.cfg, feeds[0], threads, iters)
        if int8:
            q = write_cpu_int8(fp32, Path(tmp) / "model.int8-cpu.onnx", feeds)
            out["onnx_int8_mb"] = q.stat().st_size / 1e6
            out["ort_int8_ms"] = ort_latency(q, model.cfg, feeds[0], threads, iters)
    return out


def evaluate(model, tokenizer, rows, device) -> dict:
    from edge_clipguard.train.evaluate import evaluate_model, torch_infer

    cfg = model.cfg
    metrics, _ = evaluate_model(torch_infer(model.eval(), device), rows, tokenizer, cfg, 32)
    return {"r": {d: m["pearson"] for d, m in metrics["score"].items()}, "map50": metrics["detection"]["map50"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True, help="a base checkpoint")
    p.add_argument("--student-config", default="small")
    p.add_argument("--distill-weight", type=float, default=1.0)
    p.add_argument("--iters", type=int, default=20, help="latency iterations per model")
    p.add_argument("--no-int8", action="store_true", help="skip the INT8 export and its latency")
    p.add_argument("--tag", default="")
    C.add_data_args(p, train_scenes=256, val_scenes=32, test_scenes=64, vader_train=256, vader_val=64,
                    vader_test=600)
    C.add_train_args(p, steps=150, batch_size=8, warmup=10)
    args = p.parse_args()
    torch.set_num_threads(args.threads or 2)

    from edge_clipguard.config import load_config
    from edge_clipguard.model import build_model
    from edge_clipguard.model.complexity import part_costs
    from edge_clipguard.text.tokenizer import default_tokenizer
    from edge_clipguard.train.checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model
    from edge_clipguard.train.clipping import ClipConfig
    from edge_clipguard.train.distill import Distiller
    from edge_clipguard.train.losses import DEFAULT_WEIGHTS
    from edge_clipguard.train.trainer import TrainerConfig

    env = C.environment()
    device = C.pick_device(args.device)
    payload = load_checkpoint(args.teacher)
    teacher, teacher_cfg = restore_model(payload)
    teacher_tok = load_tokenizer_from_checkpoint(payload)
    cfg = load_config(args.student_config)
    tokenizer = default_tokenizer(cfg.text.max_length)
    data = C.load_data(args.data_dir, cfg.num_classes, args.train_scenes, args.val_scenes, args.test_scenes,
                       args.vader_train, args.vader_val, args.vader_test, args.seed)
    test_rows = data.test_vader + data.test_scenes
    print(f"CPU: {env.get('cpu')}, {torch.get_num_threads()} threads; teacher '{teacher_cfg.name}' "
          f"({args.teacher}, step {payload.get('step')}); student '{cfg.name}'; {data.describe()}")
    sets = C.make_datasets(data, tokenizer, cfg.image_size, cache=True, resize=cfg.resize)
    weights = {**DEFAULT_WEIGHTS, "distill_score": args.distill_weight, "distill_heatmap": args.distill_weight}
    results: dict = {"args": vars(args), "environment": env, "models": {}}
    started = time.perf_counter()
    results["models"]["teacher"] = {"config": teacher_cfg.name, "steps": payload.get("step"),
                                    **evaluate(teacher, teacher_tok, test_rows, device)}
    print(f"  teacher evaluated ({time.perf_counter() - started:.0f}s)", flush=True)
    students = {}
    for name, with_teacher in (("student", False), ("student+teacher", True)):
        torch.manual_seed(args.seed)
        model = build_model(cfg)
        tcfg = TrainerConfig(epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             warmup_steps=args.warmup, seed=args.seed, progress=False,
                             clip=ClipConfig(mode=args.clip), loss_weights=weights)
        extra = {"distiller": Distiller(teacher, device)} if with_teacher else {}
        run = C.train(model, cfg, tokenizer, data, tcfg, Path("/tmp/ecg_bench_distill") / name, device=device,
                      save=False, sets=sets, **extra)
        students[name] = model
        last = run.rows[-1]
        results["models"][name] = {"config": cfg.name, "steps": run.steps, "train_seconds": run.seconds,
                                   "final_val_loss": run.val_curve[-1][1]["val_loss"],
                                   "final_terms": {k: last[k] for k in last if k in weights},
                                   **evaluate(model, tokenizer, test_rows, device)}
        print(f"  {name}: {run.steps} steps in {run.seconds:.0f}s, val loss {run.val_curve[-1][1]['val_loss']:.3f} "
              f"({time.perf_counter() - started:.0f}s)", flush=True)
    calib = data.calib[:8]
    for name, model, tok in (("teacher", teacher, teacher_tok), ("student", students["student"], tokenizer)):
        costs = {c.name: c for c in part_costs(model)}
        info = {"params_m": costs["total"].params / 1e6, "gflops": costs["total"].flops / 1e9,
                **latencies(model, calib, tok, args.threads or 2, args.iters, not args.no_int8)}
        results["models"][name].update(info)
        if name == "student":  # the same architecture: same cost
            results["models"]["student+teacher"].update(info)
        print(f"  {name}: costs and latency measured ({time.perf_counter() - started:.0f}s)", flush=True)
    domains = list(results["models"]["teacher"]["r"])
    header = ["model", "steps", *[f"r {d}" for d in domains], "mAP50", "params M", "GFLOPs", "ORT fp32 ms",
              "ORT INT8 ms"]
    rows = [[name, m["steps"], *[m["r"].get(d) for d in domains], m["map50"], m.get("params_m"), m.get("gflops"),
             m.get("ort_fp32_ms"), m.get("ort_int8_ms")] for name, m in results["models"].items()]
    print(C.table(header, rows))
    print(f"wall {time.perf_counter() - started:.0f}s; CPU: {env.get('cpu')}, {args.threads or 2} threads")
    out = C.write_json(C.RESULTS_DIR / f"bench_distill{('_' + args.tag) if args.tag else ''}.json", results)
    print(f"json: {out}")


if __name__ == "__main__":
    main()
