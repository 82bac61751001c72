"""The package as people install it: python -m build makes an sdist and a wheel without warnings, twine accepts
them, and the wheel carries what a checkout has (the calibration set, the manifest schema), so export --int8
runs from a wheel install with no --calib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(wheel_dist):
    return wheel_dist


def _wheel(dist) -> Path:
    [wheel] = dist[0].glob("*.whl")
    return wheel


def test_the_build_makes_an_sdist_and_a_wheel_without_warnings(dist):
    assert len(list(dist[0].glob("*.tar.gz"))) == 1 and _wheel(dist).is_file()
    warnings = [line for line in dist[1].splitlines() if "warning" in line.lower() or "deprecat" in line.lower()]
    assert warnings == []


def test_twine_accepts_both_files(dist):
    pytest.importorskip("twine")
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist[0].iterdir())],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.count("PASSED") == 2, proc.stdout + proc.stderr


def test_the_wheel_carries_the_calibration_set_and_the_manifest_schema(dist):
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    calib = [n for n in names if n.startswith("edge_clipguard/calibration_data/images/")]
    assert len(calib) == sum(1 for _ in (ROOT / "calibration_data" / "images").iterdir())
    assert {"edge_clipguard/calibration_data/calib.jsonl", "edge_clipguard/calibration_data/val.jsonl",
            "edge_clipguard/schemas/manifest-v3.schema.json", "edge_clipguard/runtime/predictor.py",
            "edge_clipguard/export/bundle_writer.py"} <= names


def test_export_int8_from_the_wheel_uses_its_calibration_set(dist, tiny_checkpoint, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(_wheel(dist))], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}  # the wheel's copy, ahead of the checkout's editable install
    where = subprocess.run([sys.executable, "-c", "import edge_clipguard; print(edge_clipguard.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(target))
    proc = subprocess.run([sys.executable, "-m", "edge_clipguard.cli", "export", str(tiny_checkpoint), "--out",
                           str(tmp_path / "bundle"), "--int8", "--engine", "never"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["file"] == "model.int8.onnx")
    assert int8["details"]["calibration_samples"] == 128


def test_version_prints_the_package_version():
    proc = subprocess.run([sys.executable, "-m", "edge_clipguard.cli", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"edge-clipguard {version('edge-clipguard')}"
