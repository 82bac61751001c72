"""`export`: the bundle it writes, and how it refuses bad input without leaving a partial bundle."""

import json
import sys

import onnx
import pytest

from edge_clipguard.bundle import SCHEMA_VERSION, read_manifest, verify_file
from edge_clipguard.cli import main


def test_int8_bundle_lists_every_file_with_its_sha256(tiny_int8_bundle):
    bundle = tiny_int8_bundle.bundle
    manifest = read_manifest(bundle)
    graphs = [f"model.{p}.onnx" for p in ("fp32", "fp16", "int8", "int8-cpu")]
    parts = [g.replace(".onnx", f".{part}.onnx") for g in graphs for part in ("text", "fusion")]
    assert sorted(manifest.files) == sorted(["tokenizer.json", *graphs, *parts])
    for name in manifest.files:
        verify_file(bundle, manifest, name)


def test_manifest_says_which_int8_artifact_is_for_which_backend(tiny_int8_bundle):
    manifest = tiny_int8_bundle.manifest
    assert [a.file for a in manifest.find(kind="onnx", precision="int8", target="tensorrt")] == ["model.int8.onnx"]
    cpu = manifest.find(kind="onnx", precision="int8", target="onnxruntime-cpu")
    assert [(a.file, a.quant_format) for a in cpu] == [("model.int8-cpu.onnx", "qdq-u8s8")]


def test_int8_scores_track_the_fp32_model(tiny_int8_bundle):
    for art in tiny_int8_bundle.manifest.find(kind="onnx", precision="int8"):
        assert art.details["accuracy"]["score_r_vs_fp32"] > 0.9, art.file
        assert art.details["accuracy"]["score_mae_vs_fp32"] < 0.5, art.file


def test_cpu_int8_runs_fused_int8_conv_and_matmul_kernels(tiny_int8_bundle, tmp_path):
    """The point of the CPU-tuned artifact: ORT fuses its U8S8 Q/DQ into QLinearConv/QLinearMatMul."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(tiny_int8_bundle.bundle / "model.int8-cpu.onnx"), options,
                         providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}
    assert {"QLinearConv", "QLinearMatMul"} <= ops


def test_fp16_artifact_is_half_inside_with_float32_io(tiny_int8_bundle):
    model = onnx.load(str(tiny_int8_bundle.bundle / "model.fp16.onnx"))
    assert model.graph.input[2].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)


def test_summary_rows_cover_every_artifact(tiny_int8_bundle):
    onnx_rows = [r.file for r in tiny_int8_bundle.rows if "[" not in r.file]
    assert onnx_rows == ["model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx", "model.int8-cpu.onnx"]


def test_int8_accuracy_is_reported_for_openvino_next_to_onnxruntime(tiny_int8_bundle):
    pytest.importorskip("openvino")
    labels = [r.file for r in tiny_int8_bundle.rows]
    assert "model.int8.onnx [openvino]" in labels
    details = tiny_int8_bundle.manifest.artifact("model.int8.onnx").details["accuracy_by_backend"]
    assert set(details) == {"onnxruntime", "openvino"}
    assert abs(details["openvino"]["score_r_vs_fp32"] - details["onnxruntime"]["score_r_vs_fp32"]) < 0.05


def test_int8_export_writes_one_int8_file_unless_the_cpu_twin_is_asked_for(tiny_checkpoint, scenes_dir, tmp_path):
    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest

    result = export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "b"), int8=True,
                                         calib=str(scenes_dir / "train.jsonl"), calib_samples=4, engine="never"),
                           log=lambda *_: None)
    assert sorted(a.file for a in result.manifest.artifacts) == ["model.fp32.onnx", "model.int8.onnx"]
    assert any("--cpu-int8" in note for note in result.notes)


def _export(capsys, *argv):
    code = main(["export", *map(str, argv), "--engine", "never"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_export_without_onnxruntime_is_one_line_and_writes_nothing(capsys, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b")
    assert code == 2 and len(err) == 1 and "pip install 'edge-clipguard[cpu]'" in err[0]
    assert not (tmp_path / "b").exists()


def test_existing_bundle_is_refused_without_force(capsys, tiny_checkpoint, tmp_path):
    (tmp_path / "b").mkdir()
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b")
    assert code == 2 and len(err) == 1 and "--force" in err[0]


def test_missing_checkpoint_is_one_line_error(capsys, tmp_path):
    code, err = _export(capsys, tmp_path / "nope.pt", "--out", tmp_path / "b")
    assert code == 2 and err == [f"edge-clipguard: error: {tmp_path / 'nope.pt'}: checkpoint not found"]
    assert not (tmp_path / "b").exists()


def test_corrupt_checkpoint_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    code, err = _export(capsys, bad, "--out", tmp_path / "b")
    assert code == 2 and len(err) == 1 and "not a readable checkpoint" in err[0]
    assert not (tmp_path / "b").exists()


def test_config_mismatch_is_refused(capsys, tiny_checkpoint, tmp_path):
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b", "--config", "base")
    assert code == 2 and len(err) == 1 and "differs from --config" in err[0]
    assert not (tmp_path / "b").exists()


def test_empty_calibration_manifest_leaves_no_bundle(capsys, tiny_checkpoint, tmp_path):
    empty = tmp_path / "calib.jsonl"
    empty.write_text("")
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b", "--int8", "--calib", empty)
    assert code == 2 and len(err) == 1 and str(empty) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.jsonl"]


def test_output_under_a_file_is_refused(capsys, tiny_checkpoint, tmp_path):
    (tmp_path / "file").write_text("x")
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "file" / "b")
    assert code == 2 and len(err) == 1 and "not a directory" in err[0]


def test_bad_batch_profile_is_refused(capsys, tiny_checkpoint, tmp_path):
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b", "--batch", "8:1:4")
    assert code == 2 and len(err) == 1 and "MIN:OPT:MAX" in err[0]


def test_force_replaces_an_existing_bundle(capsys, tiny_checkpoint, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    code, _ = _export(capsys, tiny_checkpoint, "--out", out, "--force")
    assert code == 0 and not (out / "stale.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("opset", [11, 99])
def test_unsupported_opset_is_refused(capsys, tiny_checkpoint, tmp_path, opset):
    code, err = _export(capsys, tiny_checkpoint, "--out", tmp_path / "b", "--opset", opset)
    assert code == 2 and "--opset" in err[0]


def test_both_int8_files_were_checked_against_pytorch_on_fresh_inputs(tiny_int8_bundle):
    trt = tiny_int8_bundle.manifest.artifact("model.int8.onnx").details["vs_fake_quant"]
    cpu = tiny_int8_bundle.manifest.artifact("model.int8-cpu.onnx").details["vs_fp32"]
    for errors in (trt, cpu):
        assert set(errors) == {"score", "boxes", "confidences", "labels"}
    assert trt["score"]["max_abs"] <= 0.5 and trt["score"]["mean_abs"] <= 0.1 and cpu["score"]["max_abs"] <= 1.0


def test_the_int8_accuracy_carries_paired_bootstrap_intervals_against_fp32(tiny_int8_bundle):
    accuracy = tiny_int8_bundle.manifest.artifact("model.int8.onnx").details["accuracy"]
    delta = accuracy["map50_minus_fp32"]
    assert set(delta) == {"delta", "low", "high", "rows", "resamples"} and delta["resamples"] == 100
    assert delta["low"] <= delta["delta"] <= delta["high"] and delta["rows"] >= 1
    assert isinstance(accuracy["resolves_1_point"], bool)
    assert "Δ mAP50" in next(r.accuracy for r in tiny_int8_bundle.rows if r.file == "model.int8.onnx")
