"""profile on the tiny bundle with tiny iteration counts: structure and internal consistency, no timing thresholds."""

import importlib.util
import sys
from pathlib import Path

import pytest

from edge_clipguard.runtime.errors import ProfileError
from edge_clipguard.runtime.profile import parse_batch_sizes, profile_bundle
from edge_clipguard.runtime.profile_types import STAGES, ProfileRequest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tiny_bundle, tiny_checkpoint):
    req = ProfileRequest(str(tiny_bundle), backend="onnxruntime", device="cpu", batch_sizes=(1, 2), iters=4,
                         warmup=1, threads=1, compare_torch=str(tiny_checkpoint), torch_compile=False)
    return profile_bundle(req)


def test_profile_has_a_row_per_artifact_and_batch_plus_eager_rows(report):
    assert [(r.name, r.backend, r.batch) for r in report.rows] == [
        ("model.fp32.onnx", "onnxruntime", 1), ("model.fp32.onnx", "onnxruntime", 2),
        ("model.fp32.onnx (stream)", "onnxruntime", 2), ("pytorch-eager", "torch", 1), ("pytorch-eager", "torch", 2)]


def test_stream_row_reports_throughput_of_its_batches(report):
    row = next(r for r in report.rows if r.name.endswith("(stream)"))
    assert row.e2e.n == report.request["iters"] and row.throughput == pytest.approx(2 * 1000.0 / row.e2e.p50)


def test_profile_stats_are_consistent(report):
    for row in (r for r in report.rows if not r.name.endswith("(stream)")):
        assert set(row.stages) == set(STAGES)
        for stats in (*row.stages.values(), row.e2e):
            assert stats.n == 4 and 0 < stats.min <= stats.p50 <= stats.p90 <= stats.p99
        assert row.e2e.p50 >= row.stages["infer"].min
        assert row.throughput == pytest.approx(row.batch * 1000.0 / row.e2e.p50)
        assert 0 < row.overhead_ms < row.e2e.p99


def test_profile_json_lists_rows_environment_and_request(report):
    data = report.to_dict()
    assert data["stages"] == list(STAGES) and data["units"]["latency"] == "ms"
    assert data["request"]["batch_sizes"] == [1, 2] and data["environment"]["threads"] == 1
    assert set(data["rows"][0]["e2e"]) == {"p50", "p90", "p99", "mean", "min", "n"}
    assert "torch" in data["environment"]


def test_profile_lean_import_has_no_torch_without_compare(tiny_bundle):
    import subprocess

    code = ("import sys; from edge_clipguard.runtime.profile import profile_bundle; "
            "from edge_clipguard.runtime.profile_types import ProfileRequest; "
            f"profile_bundle(ProfileRequest({str(tiny_bundle)!r}, backend='onnxruntime', device='cpu', iters=2, "
            "warmup=0, threads=1)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_profile_reports_a_first_and_a_second_fresh_process_start_per_artifact(report):
    assert [(r.name, r.backend, r.start) for r in report.startup] == [
        ("model.fp32.onnx", "onnxruntime", "first start"), ("model.fp32.onnx", "onnxruntime", "second start")]
    for row in report.startup:
        assert row.seconds > row.load_s > 0 and row.first_predict_s > 0
        assert row.start_s == pytest.approx(row.seconds - row.load_s - row.first_predict_s)
    assert report.to_dict()["startup"][0]["start"] == "first start"


def test_openvino_second_start_imports_the_compiled_model(tiny_bundle):
    pytest.importorskip("openvino")
    req = ProfileRequest(str(tiny_bundle), backend="openvino", device="cpu", iters=2, warmup=0, threads=1,
                         stream=False)
    first, second = [row for row in profile_bundle(req).startup if row.precision == "fp32"]
    for row, source in ((first, "compiled"), (second, "cache")):
        assert [entry[:2] for entry in row.compiled] == [[f"{part}/batch1-text_length8", source]
                                                         for part in ("text", "fusion")]


@pytest.mark.parametrize("text", ["", "0", "1,-2", "a"])
def test_bad_batch_lists_are_refused(text):
    with pytest.raises(ProfileError):
        parse_batch_sizes(text)


def test_bench_runtime_ratios_and_json(tiny_bundle, tiny_checkpoint, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_runtime", ROOT / "benchmarks" / "bench_runtime.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    code = bench.main([str(tiny_bundle), str(tiny_checkpoint), "--batch", "1", "--iters", "2", "--warmup", "1",
                       "--threads", "1", "--json", str(out)])
    import json

    data = json.loads(out.read_text())
    assert code == 0 and set(data["ratios"]) == {"int8_speedup", "vs_eager", "overhead_pct"}
    assert set(data["ratios"]["vs_eager"]) == {"model.fp32.onnx@b1"}
    assert all(0 < v < 100 for v in data["ratios"]["overhead_pct"].values())


def test_profile_layers_reports_the_int8_share_of_each_openvino_artifact(tiny_int8_bundle):
    pytest.importorskip("openvino")
    req = ProfileRequest(str(tiny_int8_bundle.bundle), backend="openvino", device="cpu", iters=3, warmup=0,
                         threads=1, stream=False, startup=False, layers=5, precisions=("fp32", "int8"))
    report = profile_bundle(req)
    by_file = {layer.name: layer for layer in report.layers}
    int8, fp32 = by_file["model.int8.onnx"], by_file["model.fp32.onnx"]
    # fp32: only the uint8 canvas's conversion runs on 8-bit data
    assert 0.1 < int8.int8_share <= 1.0 and fp32.int8_share < 0.05
    assert len(int8.kernels) <= 5 and [k.ms for k in int8.kernels] == sorted((k.ms for k in int8.kernels), reverse=True)
    assert any(k.int8 and k.node_type in ("Convolution", "FullyConnected", "MatMul") or "I8" in k.exec_type.upper()
               for k in int8.kernels)
    from edge_clipguard.runtime.profile_report import format_table

    assert "% of it in int8 kernels" in format_table(report)


@pytest.mark.parametrize("exec_type, int8", [("brgconv_avx512_1x1_I8", True), ("brgemm_avx512_i8", True),
                                             ("jit_uni_U8", True), ("brgconv_avx512_dw_f32", False),
                                             ("ref_any_f16", False), ("unknown_i32", False)])
def test_a_kernel_counts_as_int8_by_its_precision_suffix(exec_type, int8):
    from edge_clipguard.runtime.backends.openvino_runner import LayerTime

    assert LayerTime("n", "Convolution", exec_type, 1.0).int8 is int8


def test_nodes_are_grouped_by_the_model_part_their_own_or_fused_names_give():
    from edge_clipguard.runtime.backends.openvino_runner import LayerTime
    from edge_clipguard.runtime.layer_report import summarize_layers

    layers = [LayerTime("/model/text_tower/bert/encoder/layer.0/MatMul", "FullyConnected", "brgemm_avx512_f32", 2.0),
              LayerTime("/model/image_tower/blocks/0/Conv", "Convolution", "brgconv_avx512_I8", 3.0),
              LayerTime("Multiply_48640", "Convolution", "brgconv_avx512_f32", 1.0,
                        "Multiply_48640,/model/image_tower/blocks.1/bn1/BatchNormalization"),
              LayerTime("pixel_values/convert", "Reorder", "jit_uni_U8", 0.5)]
    report = summarize_layers(layers, "m", "openvino", "int8", 1, top=3)
    assert report.parts == (("image_tower", 4.0, 0.75), ("text_tower", 2.0, 0.0), ("other", 0.5, 1.0))
    assert report.int8_share == pytest.approx(3.5 / 6.5)


def test_time_to_first_prediction_stops_at_the_childs_result_not_its_exit():
    from edge_clipguard.runtime.startup import result_seconds

    assert result_seconds(started=100.0, result_at=100.7, exited=100.8) == pytest.approx(0.7)


def test_a_result_stamp_outside_the_childs_lifetime_falls_back_to_its_exit():
    from edge_clipguard.runtime.startup import result_seconds

    assert result_seconds(started=100.0, result_at=3.0, exited=100.8) == pytest.approx(0.8)
    assert result_seconds(started=100.0, result_at=None, exited=100.8) == pytest.approx(0.8)
