"""benchmarks/bench_pareto.py on the tiny INT8 bundle: it runs end to end and its table's numbers are consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openvino", reason="needs the [openvino] extra")
ROOT = Path(__file__).resolve().parents[2]


def run_script(argv: list[str]) -> subprocess.CompletedProcess:
    """The script in its own process, as people run it (its OpenVINO sessions and matplotlib stay out of the test
    process: in-process, a PyAV teardown later in the suite crashed)."""
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_pareto.py"), *argv], capture_output=True,
                          text=True, timeout=600)


def test_pareto_rows_of_one_bundle_agree_and_the_json_and_png_are_written(tiny_int8_bundle, tiny_checkpoint,
                                                                          scenes_dir, vader_dir, tmp_path):
    from edge_clipguard.data.manifest import write_manifest
    from edge_clipguard.data.vader import load_vader

    texts = write_manifest(tmp_path / "vader_test.jsonl", load_vader(vader_dir, split="test")[:40])
    bundle = str(tiny_int8_bundle.bundle)
    argv = ["--row", "a", bundle, str(tiny_checkpoint), "0 steps", "--row", "b", bundle, str(tiny_checkpoint),
            "0 steps", "--reference", "a", "--scenes", str(scenes_dir / "test.jsonl"), "--vader", str(texts),
            "--iters", "2", "--warmup", "0", "--resamples", "10", "--threads", "1", "--out-dir", str(tmp_path)]
    proc = run_script(argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "bench_pareto.json").read_text())
    a, b = result["rows"]
    assert a["map50"] == b["map50"] and a["score_r"] == b["score_r"]  # same file, same rows
    assert a["params_m"] == pytest.approx(1.05, abs=0.01) and a["int8_mb"] > 0
    assert a["b1_e2e_p50_ms"] > 0 and a["b8_images_per_s"] > 0
    assert set(a["score_r"]) >= {"pooled"} and a["score_r_minus_ref_fp32"]["rows"] == 40
    assert (tmp_path / "bench_pareto.png").stat().st_size > 0
