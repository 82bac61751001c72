"""Quantization accuracy: fp32 vs INT8 PTQ (ModelOpt max calibration) vs QAT, all fake-quant in PyTorch.

    python benchmarks/bench_quant.py [--checkpoint CKPT | --config tiny --steps 300] [--calib-batches 16]
        [--qat-steps 100] [--qat-lr 3e-5] [--out-dir benchmarks/results]

From one fp32 model (``--checkpoint``, or one trained here briefly):
  fp32       the model as is;
  PTQ        ``quantize_int8`` (ModelOpt INT8_DEFAULT_CFG + our float islands: LayerNorm and the score
             head stay float; max calibration over ``--calib-batches`` batches of *train* scenes);
  QAT        PTQ, then ``--qat-steps`` Trainer steps at ``--qat-lr`` through the fake quantizers;
  fp32+ft    control: the fp32 model fine-tuned the same steps at the same LR without quantizers,
             so a QAT gain can be told apart from "it simply trained longer".
Each is scored on held-out data: VADER test rows (Pearson r pooled and per domain, MAE) and the
test scenes (score r, pycocotools mAP50 / mAP50-95). Everything runs in PyTorch (fake quant), so
this measures INT8 *rounding* error, not ORT/TensorRT kernels.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

DOMAINS = ("tweets", "movies", "amazon", "nyt")


def score(model, tokenizer, data, args, device) -> dict:
    from edge_clipguard.train.metrics import per_domain_metrics

    pred = C.evaluate_text(model, tokenizer, data.test_vader, args.eval_batch, device)
    text = per_domain_metrics(pred, np.asarray([r.score for r in data.test_vader]),
                              [r.domain for r in data.test_vader])
    scenes = C.evaluate_scenes(model, tokenizer, data.test_scenes, args.eval_batch, device, ablation=False)
    return {"vader": text, "scenes_score": scenes["score"]["pooled"], "detection": scenes["detection"],
            "pred": pred}


def main(argv=None) -> int:
    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.train.clipping import ClipConfig
    from edge_clipguard.train.quantize import (
        calibration_loop,
        modelopt_state,
        quant_summary,
        quantize_int8,
        quantized_fraction,
    )
    from edge_clipguard.train.trainer import TrainerConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    p.add_argument("--tag", default="")
    p.add_argument("--work-dir", default="/tmp/bench_quant")
    p.add_argument("--config", default="tiny")
    p.add_argument("--calib-batches", type=int, default=16)
    p.add_argument("--calib-batch-size", type=int, default=16)
    p.add_argument("--qat-steps", type=int, default=100)
    p.add_argument("--qat-lr", type=float, default=3e-5, help="small: ~0.1x the training LR")
    p.add_argument("--qat-warmup", type=int, default=5)
    p.add_argument("--no-control", action="store_true", help="skip the fp32+ft control")
    C.add_data_args(p)
    C.add_train_args(p)
    args = p.parse_args(argv)
    started = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    fp32, model_cfg, tokenizer, data, info = C.get_model(args, Path(args.work_dir) / "fp32", log)
    device = C.pick_device(args.device)
    fp32 = fp32.to(device).eval()
    calib_set = ManifestDataset(data.calib, tokenizer, model_cfg.image_size, model_cfg.resize)

    def ptq():
        model = quantize_int8(copy.deepcopy(fp32), calibration_loop(calib_set, args.calib_batches,
                                                                     args.calib_batch_size))
        return model.eval()

    def fine_tune(model, name, quantized):
        tcfg = TrainerConfig(epochs=10_000, max_steps=args.qat_steps, batch_size=args.batch_size, lr=args.qat_lr,
                             warmup_steps=args.qat_warmup, seed=args.seed, progress=False,
                             clip=ClipConfig(mode=args.clip))
        result = C.train(model, model_cfg, tokenizer, data, tcfg, Path(args.work_dir) / name, device=device,
                         modelopt_state_fn=modelopt_state if quantized else None, save=False)
        log(f"{name}: {result.steps} steps in {result.seconds:.0f}s, val loss "
            f"{result.val_curve[0][1]['val_loss']:.4f} -> {result.val_curve[-1][1]['val_loss']:.4f}")
        return model.eval(), [(s, v["val_loss"]) for s, v in result.val_curve]

    variants, curves = {}, {}
    variants["fp32"] = score(fp32, tokenizer, data, args, device)
    log("fp32 scored")
    t0 = time.perf_counter()
    ptq_model = ptq()
    calib_seconds = round(time.perf_counter() - t0, 1)
    coverage = quantized_fraction(ptq_model)
    summary = quant_summary(ptq_model)
    variants["PTQ"] = score(ptq_model, tokenizer, data, args, device)
    log(f"PTQ scored (calibration {calib_seconds}s); weight quantizers enabled/present: {coverage}")
    if args.qat_steps > 0:
        qat_model, curves["QAT"] = fine_tune(ptq_model, "qat", True)
        variants["QAT"] = score(qat_model, tokenizer, data, args, device)
        if not args.no_control:
            ft_model, curves["fp32+ft"] = fine_tune(copy.deepcopy(fp32), "fp32_ft", False)
            variants["fp32+ft"] = score(ft_model, tokenizer, data, args, device)

    base = variants["fp32"]
    header = ["variant", "vader_r", *[f"r_{d}" for d in DOMAINS], "vader_mae", "scene_r", "mAP50", "mAP50-95",
              "d_r", "d_mAP50", "pred_r_vs_fp32"]
    rows = []
    for name, v in variants.items():
        vt = v["vader"]
        rows.append([name, vt["pooled"]["pearson"], *[vt.get(d, {}).get("pearson") for d in DOMAINS],
                     vt["pooled"]["mae"], v["scenes_score"]["pearson"], v["detection"]["map50"],
                     v["detection"]["map50_95"], vt["pooled"]["pearson"] - base["vader"]["pooled"]["pearson"],
                     v["detection"]["map50"] - base["detection"]["map50"], C.pearson(v["pred"], base["pred"])])
    print(f"\nquantization, model '{model_cfg.name}', device {device}; held-out VADER test "
          f"({len(data.test_vader)} rows) + test scenes ({len(data.test_scenes)}); fake-quant INT8 in PyTorch")
    print(f"PTQ: max calibration on {args.calib_batches} x {args.calib_batch_size} train scenes; QAT: "
          f"{args.qat_steps} steps at lr {args.qat_lr:g}; d_* = minus fp32; pred_r_vs_fp32 = r(scores, fp32 scores)")
    print(C.table(header, rows))
    print(f"weight quantizers enabled/present per top-level module: {coverage}")
    name = f"bench_quant_{model_cfg.name}{('_' + args.tag) if args.tag else ''}.json"
    path = C.write_json(Path(args.out_dir) / name, {
        "args": vars(args), "environment": C.environment(), "data": data.describe(), "model": info,
        "variants": {k: {kk: vv for kk, vv in v.items() if kk != "pred"} for k, v in variants.items()},
        "header": header, "table": rows, "qat_val_curves": curves, "calib_seconds": calib_seconds,
        "weight_quantizers_enabled_present": coverage,
        "quant_summary_head": summary.splitlines()[:40], "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
