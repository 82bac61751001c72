"""benchmarks/bench_camera_loop.py on the tiny INT8 bundle: every way of every path is timed, the JSON is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openvino", reason="needs the [openvino] extra")
ROOT = Path(__file__).resolve().parents[2]


def test_every_way_is_timed_and_the_goal_ratios_are_reported(tiny_int8_bundle, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_camera_loop.py"),
                           str(tiny_int8_bundle.bundle), "--iters", "2", "--warmup", "1", "--threads", "1",
                           "--batches", "1", "--block", "2",
                           "--out-dir", str(tmp_path), "--tag", "t"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "bench_camera_loop_t.json").read_text())
    ways = {(r["path"], r["query"], r["batch"], r["way"]) for r in result["rows"] if r["ms"] > 0}
    paths = {r["path"] for r in result["rows"]}
    assert "openvino int8" in paths and "ort fp32" in paths
    assert len(ways) == len(paths) * 2 * 4  # queries x ways
    assert any(name.startswith("openvino int8 short: cached vs new-text") for name in result["goals"])
    assert "CPU:" in proc.stdout


def test_a_bundle_without_parts_is_one_line_exit_2(schema2_bundle, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_camera_loop.py"), str(schema2_bundle),
                           "--out-dir", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "needs a schema-3 bundle" in proc.stderr
    assert not out.exists()


def test_before_runs_on_the_before_bundle_when_given(tiny_int8_bundle, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_int8_bundle.bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.update(schema_version=2, text_features=None)
    for art in manifest["artifacts"]:
        art.pop("parts")
    (old / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_camera_loop.py"),
                           str(tiny_int8_bundle.bundle), "--before-bundle", str(old), "--iters", "1", "--warmup", "0",
                           "--threads", "1", "--batches", "1", "--block", "2",
                           "--out-dir", str(tmp_path), "--tag", "t"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "bench_camera_loop_t.json").read_text())
    assert result["before_bundle"] == str(old)
    assert {r["path"] for r in result["rows"] if r["way"] == "before" and r["ms"] > 0} >= {"openvino int8", "ort fp32"}
