"""``export --int8``: explicit-quantization (Q/DQ) INT8 ONNX for TensorRT, plus a CPU-tuned twin.

Scales come from the QAT checkpoint when it has quantizers; otherwise ModelOpt PTQ calibrates
the fp32 model on ``--calib`` (default: the committed ``calibration_data/``). The graph is
checked against the INT8 rules (``qdq_graph.qdq_rule_violations``), run by ONNX Runtime
against the PyTorch fake-quant model on fresh inputs, and scored against PyTorch fp32 on
labelled rows.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from ..bundle import (
    FP32_ONNX,
    INT8_CPU_ONNX,
    INT8_ONNX,
    ONNX,
    QUANT_S8S8,
    QUANT_U8S8,
    TARGET_ANY,
    TARGET_ORT_CPU,
    TARGET_TENSORRT,
    Artifact,
)
from ..contract import CONFIDENCES
from ..errors import ExportValidationError
from ..train.bundle_eval import open_predictor, predict_rows, torch_stage
from ..train.evaluate import feed_batches
from .accuracy import accuracy
from .detections import OutputError, compare_outputs, merge_worst
from .onnx_export import export_onnx, random_feeds, run_onnxruntime, run_torch
from .types import ArtifactReport

RECOMMENDED_CALIB_SAMPLES = 128
# INT8 vs the fake-quant PyTorch model on random inputs: rounding differs only where a value
# sits on a quantization boundary, so scores stay close; boxes/labels can legitimately swap
# top-K order on near-ties, so they are judged on data (mAP) instead.
# Two correct implementations of one INT8 network still differ: float accumulation order moves a
# few values across a rounding boundary, each flip is one quantization step, and a 6-layer text
# tower compounds them. On the base model after 40 steps, ORT at two optimization levels differs
# from itself by ~0.2 score points, and from the fake-quant model by up to 0.47 (mean 0.16), while
# the fake-quant model is 0.41 away from fp32. So the bound is: no further from the reference than
# quantization itself moves the model (|fake-quant - fp32| on the same inputs), with a floor of 5 %
# (worst row) and 1 % (mean) of the score range. A wrong graph (lost scale, wrong axis, missing op)
# lands far outside it.
INT8_SCORE_ATOL = 0.5
INT8_SCORE_MEAN_ATOL = 0.1
INT8_CONFIDENCE_ATOL = 0.05
# ORT's own CPU quantization has no PyTorch twin: it is compared with fp32, so this is a gross-error
# guard (a broken graph lands far outside it); its real cost is the accuracy column on data. Its
# uint8 text tower moves single rows by up to ~1.1 score points (base after 120 steps: worst 1.11;
# after 2,200 steps: mean 0.32, r vs fp32 0.976), so the guard bounds the worst row at 20 % of the
# range and the mean at 5 %; a lost scale or a wrong axis moves the mean by whole points.
CPU_INT8_SCORE_ATOL = 2.0
CPU_INT8_SCORE_MEAN_ATOL = 0.5
CPU_INT8_CONFIDENCE_ATOL = 0.25


def round_weight_only_tensors(model) -> list[str]:
    """Give the big float tensors the INT8 graph stores smaller (``qdq_graph.shrink_large_constants``) exactly the
    values it stores, in place: the embedding tables and the float heads' weights as int8 (one scale per slice of
    axis 0, dequantized in float32), the image position-code buffers as float16. So the PyTorch reference,
    calibration and the exported graph see the same numbers; otherwise their rounding flips int8 rounding
    decisions downstream and the graph no longer matches its reference. Returns the tensors' names."""
    import torch

    from .qdq_graph import FLOAT_SCOPES, LARGE_TABLE_ELEMENTS, int8_rows

    embeddings = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, torch.nn.Embedding)}
    weights = [(name, tensor) for name, tensor in model.named_parameters()
               if name in embeddings or name.split(".")[0] in FLOAT_SCOPES]
    weight_names = {name for name, _ in weights}
    rounded = []
    for name, tensor in [*weights, *model.named_buffers()]:
        if not tensor.is_floating_point() or tensor.numel() < LARGE_TABLE_ELEMENTS:
            continue
        values = tensor.detach().cpu().numpy().astype(np.float32)
        if name in weight_names:
            quantized, scale = int8_rows(values)
            stored = quantized.astype(np.float32) * scale.reshape(-1, *[1] * (quantized.ndim - 1))
        else:
            stored = values.astype(np.float16).astype(np.float32)
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(stored))
        rounded.append(name)
    return rounded


def int8_reference(model, quantized: bool, samples, tokenizer, batch_size: int = 8):
    """The fake-quant PyTorch model the INT8 graph is exported from (a copy; ``model`` is untouched):
    the QAT model as trained, or ModelOpt PTQ (max calibration on ``samples``) of the fp32 model."""
    from ..data.dataset import ManifestDataset
    from ..train.quantize import calibration_loop, quantize_int8

    work = copy.deepcopy(model)
    round_weight_only_tensors(work)
    if quantized:
        return work
    dataset = ManifestDataset(samples, tokenizer, work.cfg.image_size, work.cfg.resize)
    return quantize_int8(work, calibration_loop(dataset, 0, batch_size))


def write_qdq_onnx(qmodel, path: Path, opset: int) -> dict:
    """Export the fake-quant model, store weights as int8 (and the other big constants smaller), check the rules,
    compact the file; returns graph facts."""
    import onnx

    from .graph_compact import compact_graph
    from .qdq_graph import fold_weight_quantizers, qdq_rule_violations, shrink_large_constants

    export_onnx(qmodel, path, opset=opset)
    model = onnx.load(str(path))
    folded = fold_weight_quantizers(model)
    shrunk = shrink_large_constants(model)
    problems = qdq_rule_violations(model)
    if problems:
        raise ExportValidationError(f"{path.name}: breaks the INT8 Q/DQ rules: {problems[0]} "
                                    f"(+{len(problems) - 1} more)")
    compacted = compact_graph(model)
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path))
    counts = {op: sum(n.op_type == op for n in model.graph.node) for op in ("QuantizeLinear", "DequantizeLinear")}
    return {"folded_weights": folded, "weight_only_int8": shrunk["int8"], "float16_constants": shrunk["float16"],
            **compacted, **counts}


def check_against_torch(path: Path, reference, limits: dict[str, float], real_feeds=(), batch_sizes=(1, 3),
                        seed: int = 321, fp32_model=None) -> dict:
    """ORT on an INT8 graph vs a PyTorch reference on fresh inputs: random ones at two batch sizes
    (dynamic batch) plus ``real_feeds`` (rows not used for calibration). Returns the worst error per
    output; raises ExportValidationError naming each output over its limit in ``limits``. With
    ``fp32_model``, the score and confidence limits widen by how far quantization itself moves them (the
    fake-quant reference against fp32, on the same inputs): a narrow pruned layer turns one rounding flip into a
    larger confidence move, in PyTorch as in ONNX Runtime."""
    import onnx

    onnx.checker.check_model(str(path))
    worst_errors: dict[str, OutputError] = {}
    score_diffs, quant_noise, confidence_noise = [], [], [0.0]
    for feed in [*random_feeds(reference.cfg, batch_sizes, seed), *real_feeds]:
        expected, got = run_torch(reference, feed), run_onnxruntime(path, feed)
        score_diffs.append(np.abs(expected["score"].astype(np.float64) - got["score"]))
        if fp32_model is not None:
            fp32 = run_torch(fp32_model, feed)
            quant_noise.append(np.abs(expected["score"].astype(np.float64) - fp32["score"]))
            moved = {e.name: e for e in compare_outputs(fp32, expected, limits["confidences"])}
            confidence_noise.append(moved[CONFIDENCES].max_abs)
        merge_worst(worst_errors, compare_outputs(expected, got, limits["confidences"]))
    worst = {name: {"max_abs": e.max_abs, "max_rel": e.max_rel} for name, e in worst_errors.items()}
    score = worst["score"]
    score["mean_abs"] = float(np.concatenate(score_diffs).mean())
    limits = dict(limits)
    if quant_noise:
        noise = np.concatenate(quant_noise)
        score["reference_vs_fp32"] = {"max_abs": float(noise.max()), "mean_abs": float(noise.mean())}
        limits["score"] = max(limits["score"], float(noise.max()))
        limits["score_mean"] = max(limits.get("score_mean", 0.0), float(noise.mean()))
        # Rounding flips (the fixed limit) come on top of quantization's own move: the reference itself sits
        # that far from fp32, and an INT8 graph as close to fp32 as to the reference must pass.
        limits["confidences"] += max(confidence_noise)
        worst["confidences"]["reference_vs_fp32"] = {"max_abs": max(confidence_noise)}
    failed = [f"{k} max_abs={worst[k]['max_abs']:.3g} max_rel={worst[k]['max_rel']:.3g} (tol {tol:.3g})"
              for k, tol in limits.items() if k in worst and worst[k]["max_abs"] > tol]
    if "score_mean" in limits and score["mean_abs"] > limits["score_mean"]:
        failed.append(f"score mean_abs={score['mean_abs']:.3g} (tol {limits['score_mean']:.3g})")
    if failed:
        raise ExportValidationError(f"{path.name}: ONNX Runtime disagrees with the PyTorch reference: "
                                    + ", ".join(failed))
    return worst


def write_int8(model, fp32_model, cfg, payload, bundle: Path, req, log) -> tuple[list, list, list]:
    """Write model.int8.onnx (+ model.int8-cpu.onnx with --cpu-int8); returns (artifacts, summary rows, notes)."""
    from ..data.calibration import load_calibration_samples
    from ..data.dataset import ManifestDataset
    from ..train.checkpoint import load_tokenizer_from_checkpoint

    tokenizer = load_tokenizer_from_checkpoint(payload)
    notes: list[str] = []
    calib = load_calibration_samples(req.calib, cfg.num_classes)
    if req.calib_samples:
        calib = calib[: req.calib_samples]
    started = time.perf_counter()
    quantized = bool(payload.get("modelopt_state"))
    if quantized:
        method = "QAT scales from the checkpoint (ModelOpt)"
    else:
        if len(calib) < RECOMMENDED_CALIB_SAMPLES:
            notes.append(f"warning: {len(calib)} calibration samples; at least {RECOMMENDED_CALIB_SAMPLES} "
                         "are recommended (--calib DIR|MANIFEST)")
        log(f"int8: ModelOpt PTQ, max calibration on {len(calib)} samples from {req.calib or 'calibration_data/'}")
        method = f"ModelOpt PTQ, max calibration, {len(calib)} samples"
    val_rows = _validation_rows(req, cfg, calib, notes)
    real_feeds = [feed for feed, _ in feed_batches(ManifestDataset(val_rows[:6], tokenizer, cfg.image_size, cfg.resize),
                                                   3)]
    qmodel = int8_reference(model, quantized, calib, tokenizer)
    graph = write_qdq_onnx(qmodel, bundle / INT8_ONNX, req.opset)
    vs_fake_quant = check_against_torch(bundle / INT8_ONNX, qmodel,
                                        {"score": INT8_SCORE_ATOL, "score_mean": INT8_SCORE_MEAN_ATOL,
                                         "confidences": INT8_CONFIDENCE_ATOL}, real_feeds,
                                        fp32_model=fp32_model)
    written = [(INT8_ONNX, QUANT_S8S8, TARGET_TENSORRT, time.perf_counter() - started,
                {"graph": graph, "vs_fake_quant": vs_fake_quant})]
    if req.cpu_int8:
        calib_set = ManifestDataset(calib, tokenizer, cfg.image_size, cfg.resize)
        written.append(_write_cpu_twin(bundle, fp32_model, calib_set, real_feeds))
    opened = provisional_bundle(bundle, cfg, [Artifact(name, ONNX, "int8", target, fmt) for name, fmt, target, *_ in
                                              written])
    reference = predict_rows(open_predictor(opened, "onnxruntime", artifact=FP32_ONNX), val_rows,
                             infer=torch_stage(fp32_model))
    ref_acc = accuracy(reference, reference, val_rows, cfg.num_classes)
    fp32_size = (bundle / FP32_ONNX).stat().st_size
    arts, rows, unresolved = [], [], None
    for name, fmt, target, seconds, extra in written:
        by_backend = {backend: accuracy(predict_rows(open_predictor(opened, backend, artifact=name), val_rows),
                                        reference, val_rows, cfg.num_classes, intervals=True)
                      for backend in cpu_backends()}
        acc = by_backend["onnxruntime"]
        unresolved = unresolved or acc.unresolved_note()
        size = (bundle / name).stat().st_size
        details = {"opset": req.opset, "method": method, "calibration_samples": len(calib),
                   "size_ratio_vs_fp32": round(size / fp32_size, 4), "validation_rows": len(val_rows),
                   "accuracy": _accuracy_details(acc, ref_acc),
                   "accuracy_by_backend": {k: _accuracy_details(v, ref_acc) for k, v in by_backend.items()}, **extra}
        arts.append(Artifact(name, ONNX, "int8", target, fmt, _finite(details)))
        for backend, backend_acc in by_backend.items():
            label = name if backend == "onnxruntime" else f"{name} [{backend}]"
            rows.append(ArtifactReport(label, f"int8 {fmt}", size / 1e6, backend_acc.describe(ref_acc),
                                       seconds if backend == "onnxruntime" else 0.0))
    if unresolved:
        notes.append(f"warning: {unresolved}")
    notes.append(f"int8 method: {method}; {INT8_ONNX} is for TensorRT and OpenVINO"
                 + (f", {INT8_CPU_ONNX} for ONNX Runtime CPU" if req.cpu_int8 else
                    "; for CPU devices with ONNX Runtime only, add --cpu-int8 (a U8S8 twin ORT runs fast)"))
    return arts, rows, notes


def cpu_backends() -> list[str]:
    """The CPU backends an INT8 file is scored on: ONNX Runtime always, OpenVINO when installed."""
    import importlib.util

    return ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") is not None else [])


def provisional_bundle(bundle: Path, cfg, int8_artifacts: list[Artifact]):
    """The bundle being written, opened through the runtime with a manifest of its files so far (the fp32 graph
    and the INT8 files), so the accuracy column runs the runtime's image path, runners and decode."""
    from ..train.bundle_eval import opened
    from .manifest_builder import build_manifest

    fp32 = Artifact(FP32_ONNX, ONNX, "fp32", TARGET_ANY)
    return opened(bundle, build_manifest(cfg, bundle, [fp32, *int8_artifacts], {}, ""))


def _accuracy_details(acc, ref_acc) -> dict:
    return {"score_r": acc.score_r, "map50": acc.map50, "fp32_score_r": ref_acc.score_r,
            "fp32_map50": ref_acc.map50, "score_r_vs_fp32": acc.score_r_vs_fp32,
            "score_mae_vs_fp32": acc.score_mae_vs_fp32,
            "map50_minus_fp32": acc.map50_delta.to_dict() if acc.map50_delta else None,
            "score_r_minus_fp32": acc.score_r_delta.to_dict() if acc.score_r_delta else None,
            "resolves_1_point": acc.unresolved_note() is None}



def _write_cpu_twin(bundle: Path, fp32_model, calib_set, real_feeds) -> tuple:
    """model.int8-cpu.onnx (``--cpu-int8``): ORT's own U8S8 quantization, checked against PyTorch fp32."""
    from .ort_cpu_int8 import write_cpu_int8

    started = time.perf_counter()
    feeds = [feed for feed, _ in feed_batches(calib_set, 8)]
    write_cpu_int8(bundle / FP32_ONNX, bundle / INT8_CPU_ONNX, feeds)
    vs_fp32 = check_against_torch(bundle / INT8_CPU_ONNX, fp32_model,
                                  {"score": CPU_INT8_SCORE_ATOL, "score_mean": CPU_INT8_SCORE_MEAN_ATOL,
                                   "confidences": CPU_INT8_CONFIDENCE_ATOL}, real_feeds)
    return (INT8_CPU_ONNX, QUANT_U8S8, TARGET_ORT_CPU, time.perf_counter() - started,
            {"quantized_ops": ["Conv", "MatMul", "Gemm"], "calibration": "ORT MinMax", "vs_fp32": vs_fp32})


def _validation_rows(req, cfg, calib: list, notes: list[str]) -> list:
    """Rows for the accuracy column: --val-data, else the calibration folder's held-apart
    ``val.jsonl`` (the committed set has 32), else the calibration rows themselves (said so)."""
    from ..data.calibration import load_calibration_samples
    from ..data.text_refs import load_manifest
    from ..errors import DataError

    if req.val_data:
        return [s for s in load_manifest(req.val_data, cfg.num_classes) if s.image is not None]
    try:
        rows = load_calibration_samples(req.calib, cfg.num_classes, name="val.jsonl")
        if rows and rows[0].image not in {s.image for s in calib}:
            notes.append(f"accuracy measured on {len(rows)} held-apart calibration-set rows (val.jsonl); "
                         "pass --val-data MANIFEST for your own held-out data")
            return rows
    except DataError:
        pass
    notes.append("accuracy measured on the calibration rows (pass --val-data MANIFEST for held-out numbers)")
    return calib


def _finite(value):
    """JSON-safe copy: NaN/inf (e.g. r of a constant prediction) become None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return float(value) if isinstance(value, np.floating) else value
