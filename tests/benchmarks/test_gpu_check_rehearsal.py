"""benchmarks/gpu_check.py on the CPU: the rehearsal runs every stage of the GPU check (tiny config, CPU
providers, few iterations) and writes the JSON the GPU run will write, so the script cannot rot before a GPU
machine is lent; and its orchestration (time boxes, failures, partial results, the budget) holds up."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STAGE_NAMES = ("setup", "tests", "checkpoint", "export", "tensorrt", "latency", "train")
MUST_RUN_HERE = ("setup", "checkpoint", "export", "latency", "train")
LATENCY_PATHS = {"ort fp32", "ort fp32 +graph", "ort fp16", "ort fp16 +graph", "ort int8-qdq", "predictor onnxruntime",
                 "torch eager", "torch.compile", "tensorrt int8", "tensorrt fp16"}
MUST_MEASURE_ON_CPU = {"ort fp32", "ort fp16", "ort int8-qdq", "predictor onnxruntime", "torch eager", "torch.compile"}
TOP_KEYS = {"schema", "mode", "ran_on_gpu", "started", "seconds", "budget_s", "command", "machine", "counts", "stages"}
STAGE_KEYS = {"name", "status", "reason", "seconds", "timeout_s", "result"}
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def load(name: str, file: str):
    """A benchmark script as a module (registered first: its dataclasses look their module up by name)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_check():
    return load("gpu_check_under_test", "gpu_check.py")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """One rehearsal run: (completed process, parsed JSON, Markdown text, work folder)."""
    base = tmp_path_factory.mktemp("gpu_check")
    out, work = base / "out", base / "work"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--rehearse", "--out", str(out), "--work", str(work)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert (out / "gpu_check.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    return proc, report, (out / "gpu_check.md").read_text(encoding="utf-8"), work


def stage(report: dict, name: str) -> dict:
    return next(s for s in report["stages"] if s["name"] == name)


def test_every_stage_is_present_in_order_with_a_status(rehearsal):
    proc, report, _, _ = rehearsal
    assert TOP_KEYS <= set(report)
    assert report["schema"] == "edge-clipguard/gpu-check/1" and report["mode"] == "rehearse"
    assert report["ran_on_gpu"] is False
    assert [s["name"] for s in report["stages"]] == list(STAGE_NAMES)
    for record in report["stages"]:
        assert STAGE_KEYS <= set(record), record["name"]
        assert record["status"] in ("ok", "skipped", "failed", "timeout")
        if record["status"] == "ok":
            assert record["seconds"] > 0 and record["timeout_s"] > 0
        else:
            assert record["reason"], record["name"]
    for name in MUST_RUN_HERE:
        assert stage(report, name)["status"] == "ok", (name, stage(report, name)["reason"])
    counts = report["counts"]
    assert sum(counts.values()) == len(STAGE_NAMES)
    assert proc.returncode == (0 if counts["failed"] + counts["timeout"] == 0 else 1), proc.stderr[-2000:]


def test_setup_reports_the_machine_and_imports_the_checkout_through_the_shim(rehearsal):
    _, report, _, work = rehearsal
    env = report["machine"]
    assert env["cpu_model"] and env["cpus"] >= 1
    assert env["torch"]["version"] and "CPUExecutionProvider" in env["onnxruntime"]["providers"]
    assert Path(env["edge_clipguard"]["path"]) == work.resolve() / "src" / "edge_clipguard"
    assert (env["tensorrt"] is not None) == HAS_TENSORRT


def test_the_suites_cuda_and_tensorrt_tests_are_counted(rehearsal):
    _, report, _, _ = rehearsal
    tests = stage(report, "tests")
    result = tests["result"]
    assert tests["status"] in ("ok", "failed")  # a failing test is the suite's finding, reported by that test too
    assert any("tensorrt" in test for test in result["selection"])
    assert result["total"] == result["passed"] + result["skipped"] + result["failed"] + result["errors"] > 0
    if not HAS_TENSORRT:
        assert result["skipped"] >= 1 and any("tensorrt" in why for why in result["skip_reasons"].values())


def test_checkpoint_and_export_artifacts(rehearsal):
    _, report, _, _ = rehearsal
    ckpt = stage(report, "checkpoint")["result"]
    assert ckpt["config"] == "tiny" and ckpt["params_m"] > 0 and ckpt["size_mb"] > 0
    assert "untrained" in ckpt["kind"]
    artifacts = {a["precision"]: a for a in stage(report, "export")["result"]["artifacts"]}
    assert {"fp32", "fp16", "int8"} <= set(artifacts)
    assert all(a["size_mb"] > 0 for a in artifacts.values())
    trt = stage(report, "tensorrt")
    if not HAS_TENSORRT:
        assert trt["status"] == "skipped" and "tensorrt" in trt["reason"]


def test_latency_rows_cover_every_path_at_both_batch_sizes(rehearsal):
    _, report, _, _ = rehearsal
    rows = stage(report, "latency")["result"]["rows"]
    for batch in (1, 16):
        assert {r["path"] for r in rows if r["batch"] == batch} == LATENCY_PATHS
    for row in rows:
        assert row["status"] in ("ok", "skipped", "failed")
        if row["status"] != "ok":
            assert row["reason"]
            continue
        infer, e2e = row["infer_ms"], row["e2e_ms"]
        assert 0 < infer["min"] <= infer["p50"] <= infer["p99"]
        assert e2e["p50"] >= infer["p50"] > 0  # every end-to-end sample contains its inference sample
        assert row["iters"] == infer["n"] == e2e["n"] >= 1
        assert row["throughput"] == pytest.approx(row["batch"] * 1000.0 / e2e["p50"])
    by_key = {(r["path"], r["batch"]): r for r in rows}
    for path in MUST_MEASURE_ON_CPU:
        assert by_key[(path, 1)]["status"] == by_key[(path, 16)]["status"] == "ok", by_key[(path, 1)].get("reason")
    assert by_key[("ort fp32 +graph", 1)]["status"] == "skipped" and "CUDA" in by_key[("ort fp32 +graph", 1)]["reason"]
    assert by_key[("ort fp32", 1)]["artifact"] == "model.fp32.onnx" and by_key[("ort fp32", 1)]["device"] == "cpu"
    if not HAS_TENSORRT:
        assert by_key[("tensorrt int8", 1)]["status"] == "skipped"


def test_training_throughput_rows(rehearsal):
    _, report, _, _ = rehearsal
    rows = stage(report, "train")["result"]["rows"]
    assert [r["batch"] for r in rows] == [16, 64]
    for row in rows:
        assert row["status"] == "ok" and row["amp"] == "bf16" and row["config"] == "tiny"
        assert row["steps_per_s"] > 0 and row["steps_timed"] >= 1
        assert row["samples_per_s"] == pytest.approx(row["steps_per_s"] * row["batch"])


def test_markdown_names_the_hardware_and_every_stage(rehearsal):
    _, report, md, _ = rehearsal
    assert "CPU rehearsal" in md and report["machine"]["cpu_model"] in md
    assert "| stage | status |" in md and "| path | artifact | batch |" in md
    for name in STAGE_NAMES:
        assert f"| {name} | {stage(report, name)['status']} |" in md


# ----- orchestration, without running the stages -----------------------------------------------------------
def test_out_pointing_to_a_file_is_a_one_line_error(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("keep me", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--rehearse", "--out", str(target)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--out" in proc.stderr and "not a directory" in proc.stderr
    assert target.read_text(encoding="utf-8") == "keep me"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see that the killed processes are gone")
def test_a_hanging_stage_is_killed_with_its_children_and_keeps_partial_results(gpu_check, tmp_path):
    pid_file = tmp_path / "child.pid"
    partial = tmp_path / "stages" / "latency.json"
    script = (f"import json, pathlib, subprocess, sys, time\n"
              f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
              f"pathlib.Path({str(partial)!r}).parent.mkdir(parents=True, exist_ok=True)\n"
              f"pathlib.Path({str(partial)!r}).write_text(json.dumps({{'status': 'partial', 'reason': '', "
              f"'result': {{'rows': [1]}}}}))\n"
              f"time.sleep(120)\n")
    record = gpu_check.run_stage("latency", [sys.executable, "-c", script], dict(os.environ), 3.0, tmp_path)
    assert record["status"] == "timeout" and "time box" in record["reason"] and "partial" in record["reason"]
    assert record["result"] == {"rows": [1]}
    child = int(pid_file.read_text())
    for _ in range(50):
        if not _running(child):
            break
        time.sleep(0.1)
    assert not _running(child)


def test_a_crashing_stage_is_failed_with_its_last_words(gpu_check, tmp_path):
    cmd = [sys.executable, "-c", "print('loading'); print('boom: no such thing'); raise SystemExit(3)"]
    record = gpu_check.run_stage("export", cmd, dict(os.environ), 30.0, tmp_path)
    assert record["status"] == "failed"
    assert "exited 3" in record["reason"] and "boom: no such thing" in record["reason"]
    assert record["log_tail"][-1] == "boom: no such thing"


def test_a_budget_too_small_skips_every_stage_and_still_reports(gpu_check, tmp_path):
    records = gpu_check.run_all("rehearse", tmp_path, None, budget_s=5.0, log=lambda _: None)
    assert [r["name"] for r in records] == list(STAGE_NAMES)
    assert all(r["status"] == "skipped" for r in records)
    reasons = {r["name"]: r["reason"] for r in records}
    assert reasons["setup"].startswith("out of time") and reasons["train"].startswith("out of time")
    assert reasons["export"] == "needs checkpoint, which skipped"
    report = gpu_check.build_report("rehearse", records, time.time(), 5.0, ["gpu_check.py"])
    md = gpu_check.markdown(report)
    assert report["counts"]["skipped"] == len(STAGE_NAMES) and "| latency | skipped |" in md


def test_the_stage_lists_agree(gpu_check, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the stages script imports its parent's helpers
    stages = load("gpu_check_stages_under_test", "gpu_check_stages.py")
    assert tuple(s.name for s in gpu_check.STAGES) == stages.STAGE_NAMES == tuple(stages.STAGES) == STAGE_NAMES
