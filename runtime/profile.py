"""``profile``: honest per-stage and end-to-end latency of every artifact a backend can run.

Method: each row loads its own Predictor (text cache off, so tokenize is measured, not a cache hit),
runs ``warmup`` untimed iterations, then ``iters`` timed ones. Each iteration times the four stages
(tokenize, preprocess, infer, decode) with ``time.perf_counter_ns`` back to back; end-to-end is the
whole iteration, overhead the per-iteration ``e2e - infer`` (median). Backends return host arrays, so
the GPU work is finished when ``infer`` returns (ORT copies outputs to the host; PyTorch rows call
``torch.cuda.synchronize``). Preprocess starts from a decoded HxWx3 uint8 array (file decoding is
the app's business and not included). Throughput = batch / median e2e. Percentiles of few iterations
are rough: p99 needs >= 100 iterations to mean anything. A "(stream)" row per artifact times
``predict_stream`` on JPEG bytes at the largest batch size: decode included, overlapped with inference.
Each row also records the process's resident memory after it, its peak so far, and GPU memory on CUDA.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..bundle import ENGINE, ONNX, Artifact, Manifest, read_manifest
from ..contract import ATTENTION_MASK, INPUT_IDS, PIXEL_VALUES
from ..errors import ClipGuardError
from .errors import ProfileError
from .layer_report import LayerReport, summarize_layers
from .measure import Pipeline, measured_row, sample_inputs, stream_row
from .predictor import Predictor, PredictorConfig
from .profile_types import PROFILE_BACKENDS, ProfileReport, ProfileRequest, ProfileRow
from .selection import ort_has_cuda, tensorrt_importable
from .startup import StartupRow, measure_startup

# The PyTorch reference rows of ``--compare-torch`` live with the training stack (they need torch and the model):
# loaded by name, only when asked for, so the runtime itself never imports them (the layer contracts check it).
TORCH_REFERENCE = "edge_clipguard.train.profile_torch"


@dataclass(frozen=True)
class Target:
    backend: str
    device: str
    artifact: Artifact
    precision: str | None = None  # "fp16" on openvino: the fp32 file with bf16 inference

    @property
    def label(self) -> str:
        """The precision column: what the row computes in."""
        return "bf16" if self.backend == "openvino" and self.precision == "fp16" else self.artifact.precision


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ProfileError(f"--batch: expected comma-separated integers such as 1,8, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ProfileError(f"--batch: expected positive batch sizes, got {text!r}")
    return sizes


def list_targets(manifest: Manifest, backend: str, device: str,
                 precisions: tuple[str, ...]) -> tuple[list[Target], list[ProfileRow]]:
    """Every artifact the chosen backend(s) can run, plus note rows for those that cannot run here."""
    if backend not in PROFILE_BACKENDS:
        raise ProfileError(f"--backend: {backend!r} is not one of {', '.join(PROFILE_BACKENDS)}")
    wanted = [a for a in manifest.artifacts if not precisions or a.precision in precisions]
    targets, notes = [], []
    if backend in ("auto", "all", "onnxruntime"):
        ort_device = device if device != "auto" else ("cuda" if ort_has_cuda() else "cpu")
        for art in (a for a in wanted if a.kind == ONNX):
            if ort_device == "cuda" and art.precision == "int8":
                notes.append(ProfileRow(art.file, "onnxruntime", "cuda", art.precision, 0,
                                        note="skipped: INT8 Q/DQ does not run on the ORT CUDA EP (use tensorrt)"))
            else:
                targets.append(Target("onnxruntime", ort_device, art))
    if backend in ("auto", "all", "openvino") and device != "cuda":
        targets.extend(_openvino_targets(manifest, precisions, explicit=backend == "openvino"))
    if backend in ("auto", "all", "tensorrt"):
        for art in (a for a in wanted if a.kind == ENGINE):
            if device == "cpu":
                continue
            if not tensorrt_importable():
                notes.append(ProfileRow(art.file, "tensorrt", "cuda", art.precision, 0,
                                        note="skipped: tensorrt is not installed here"))
            else:
                targets.append(Target("tensorrt", "cuda", art))
    if not targets and not notes:
        raise ProfileError(f"{manifest.config_name} bundle: no artifact matches backend {backend!r}, device "
                           f"{device!r} and precision {','.join(precisions) or 'all'}")
    return targets, notes


def _openvino_targets(manifest: Manifest, precisions: tuple[str, ...], explicit: bool) -> list[Target]:
    """OpenVINO rows on the CPU: every ONNX file as it is, plus the fp32 file in bf16 where the CPU has native
    BF16 (profiled as precision fp16). Without openvino: nothing under auto/all, an error when asked for."""
    from .backends.openvino_runner import has_native_bf16

    if importlib.util.find_spec("openvino") is None:
        if explicit:
            raise ProfileError("--backend openvino: OpenVINO is not installed; pip install 'edge-clipguard[openvino]'")
        return []
    onnx = [a for a in manifest.artifacts if a.kind == ONNX]
    targets = [Target("openvino", "cpu", a) for a in onnx if not precisions or a.precision in precisions]
    fp32 = [a for a in onnx if a.precision == "fp32"]
    if fp32 and (not precisions or "fp16" in precisions) and has_native_bf16():
        targets.append(Target("openvino", "cpu", fp32[0], "fp16"))
    return targets


def cpu_model() -> str:
    """The CPU's marketing name (every timing is printed next to it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int | None) -> dict[str, object]:
    from .backends.onnxruntime_runner import default_threads

    env: dict[str, object] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "python": platform.python_version(), "platform": platform.platform(),
                              "machine": platform.machine(), "cpus": os.cpu_count(),
                              "threads": threads or default_threads(), "numpy": np.__version__,
                              "cpu_model": cpu_model()}
    for module in ("onnxruntime", "openvino"):
        if importlib.util.find_spec(module) is not None:
            env[module] = importlib.import_module(module).__version__
    return env


def stage_pipeline(predictor: Predictor) -> Pipeline:
    return predictor.tokenize, predictor.preprocess, predictor.infer, predictor.decode


def profile_bundle(req: ProfileRequest, log: Callable[[str], None] = lambda _: None) -> ProfileReport:
    """Profile every usable artifact at every batch size (+ PyTorch rows when asked); see module docstring."""
    manifest = read_manifest(req.bundle)
    targets, rows = list_targets(manifest, req.backend, req.device, req.precisions)
    rows = list(rows)
    startup: list[StartupRow] = []
    layers: list[LayerReport] = []
    stage_source: Predictor | None = None  # kept open: the PyTorch rows reuse its tokenize/preprocess/decode
    for target in targets:
        config = PredictorConfig(backend=target.backend, device=target.device, artifact=target.artifact.file,
                                 precision=target.precision, threads=req.threads, text_cache_size=0,
                                 compile_cache=req.compile_cache)
        try:
            predictor = Predictor.from_config(Path(req.bundle), config)
        except ClipGuardError as exc:
            rows.append(ProfileRow(target.artifact.file, target.backend, target.device, target.label, 0,
                                   note=f"not loaded: {exc}"))
            continue
        for batch in req.batch_sizes:
            log(f"profiling {target.artifact.file} on {target.backend} {target.device} ({target.label}), batch {batch}")
            rows.append(measured_row(target.artifact.file, target.backend, target.device, target.label,
                                     batch, stage_pipeline(predictor), req))
        if req.stream:
            rows.append(stream_row(target.artifact.file, predictor, target.label, max(req.batch_sizes), req))
        if req.layers and target.backend == "openvino":
            log(f"per-node profiling of {target.artifact.file} ({target.label}), batch 1")
            layers.append(layer_profile(predictor, target, req))
        if req.startup:
            log(f"startup: two fresh processes for {target.artifact.file} on {target.backend} ({target.label})")
            startup.extend(measure_startup(req.bundle, target.backend, target.device, target.artifact.file,
                                           target.precision, req.threads, target.label, req.verify_key))
        if stage_source is None:
            stage_source = predictor
        else:
            predictor.close()
    env = environment(req.threads)
    if req.compare_torch:
        torch_rows = importlib.import_module(TORCH_REFERENCE).torch_rows

        if stage_source is None:
            rows.append(ProfileRow("pytorch", "torch", req.device, "fp32", 0,
                                   note="skipped: needs one loadable bundle artifact for tokenize/preprocess/decode"))
        else:
            torch_result, torch_env = torch_rows(req, stage_source, log)
            rows.extend(torch_result)
            env.update(torch_env)
    if stage_source is not None:
        stage_source.close()
    request = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(req).items()}
    return ProfileReport(tuple(rows), env, request, tuple(startup), tuple(layers))


def layer_profile(predictor: Predictor, target: Target, req: ProfileRequest) -> LayerReport:
    """OpenVINO's per-node times for one batch-1 inference of the profile's sample input (``--layers``)."""
    texts, images = sample_inputs(1, req.image_size)
    tokens, pixels = predictor.tokenize(texts), predictor.preprocess(images)
    feed = {INPUT_IDS: tokens.input_ids, ATTENTION_MASK: tokens.attention_mask, PIXEL_VALUES: pixels.pixel_values}
    timed = predictor.runner.profile_layers(feed, iters=max(1, min(req.iters, 20)))
    return summarize_layers(timed, target.artifact.file, target.backend, target.label, 1, req.layers)
