"""The device install, as a device gets it: the built wheel with only the OpenVINO extra, in a fresh venv — no
torch, no transformers, no OpenCV — predicts and profiles an INT8 bundle, and stays under 350 MB on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The goal for the device install (the wheel, its dependencies and the OpenVINO extra; not the venv's
# own pip/setuptools): a budget people can plan a device image around.
DEVICE_INSTALL_BUDGET_MB = 350
VENV_TOOLING = {"pip", "setuptools", "wheel"}


@pytest.fixture(scope="module")
def device_venv(wheel_dist, tmp_path_factory):
    [wheel] = wheel_dist[0].glob("*.whl")
    venv = tmp_path_factory.mktemp("device") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[openvino]"], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def _run(venv: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """A command of the device venv, run outside the checkout (whose folders would shadow the installed package)."""
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          cwd=venv.parent)


def _installed_mb(venv: Path) -> dict[str, float]:
    """MB on disk per installed distribution (from each one's RECORD), measured by the venv's own Python."""
    script = ("import json, importlib.metadata as m\n"
              "sizes = {}\n"
              "for d in m.distributions():\n"
              "    files = [f.locate() for f in (d.files or [])]\n"
              "    sizes[d.metadata['Name'].lower()] = sum(p.stat().st_size for p in files if p.is_file()) / 1e6\n"
              "print(json.dumps(sizes))")
    return json.loads(_run(venv, "python", "-c", script).stdout)


def test_the_device_install_has_no_torch_transformers_or_opencv(device_venv):
    for module in ("torch", "transformers", "cv2", "onnx"):
        proc = _run(device_venv, "python", "-c", f"import {module}")
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module
    assert _run(device_venv, "python", "-c", "import openvino, edge_clipguard.runtime").returncode == 0


def test_the_device_install_fits_in_350_mb(device_venv):
    sizes = _installed_mb(device_venv)
    total = sum(mb for name, mb in sizes.items() if name not in VENV_TOOLING)
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    print(f"device install: {total:.0f} MB; largest: {largest}")
    assert "edge-clipguard" in sizes and "openvino" in sizes
    assert total <= DEVICE_INSTALL_BUDGET_MB, f"{total:.0f} MB: {largest}"


def test_the_device_install_predicts_an_int8_bundle_on_openvino(device_venv, tiny_int8_bundle, images, tmp_path):
    image = tmp_path / "scene.png"
    images[0].save(image)
    proc = _run(device_venv, "edge-clipguard", "predict", str(tiny_int8_bundle.bundle), "--backend", "openvino",
                "--precision", "int8", "--text", "a red star", "--image", str(image), "--json",
                "--min-confidence", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert 0.0 <= result["score"] <= 10.0 and result["image_size"] == list(images[0].size)
    assert len(result["detections"]) > 0


def test_the_device_install_profiles_an_int8_bundle_and_reports_its_memory(device_venv, tiny_int8_bundle,
                                                                          tmp_path):
    report = tmp_path / "profile.json"
    proc = _run(device_venv, "edge-clipguard", "profile", str(tiny_int8_bundle.bundle), "--backend", "openvino",
                "--precision", "int8", "--iters", "3", "--warmup", "1", "--no-stream", "--no-startup",
                "--json", str(report))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(report.read_text())["rows"]
    assert rows and all(row["rss_mb"] > 0 and row["e2e"]["p50"] > 0 for row in rows)
    print(f"device install, profile rows: {[(r['name'], r['batch'], round(r['peak_rss_mb'])) for r in rows]} MB")
