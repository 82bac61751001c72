"""benchmarks/bench_parts.py on the tiny INT8 bundle: per-part times add up and the JSON is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openvino", reason="needs the [openvino] extra")
ROOT = Path(__file__).resolve().parents[2]


def test_part_times_add_up_to_the_node_time_and_the_json_is_written(tiny_int8_bundle, tmp_path):
    bundle = str(tiny_int8_bundle.bundle)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_parts.py"), bundle, bundle, "--iters",
                           "2", "--threads", "1", "--out-dir", str(tmp_path), "--tag", "t"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "bench_parts_t.json").read_text())["rows"]
    assert len(rows) == 2
    for row in rows:
        assert sum(row["parts_ms"].values()) == pytest.approx(row["node_ms"], rel=1e-6)
        assert {"image_tower", "text_tower", "fusion", "box_head"} <= set(row["parts_ms"])
        assert 0.0 < row["int8_share"] <= 1.0
    assert "image_tower" in proc.stdout and "threads on" in proc.stdout
