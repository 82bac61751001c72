"""Engine building: the parts that need no TensorRT run everywhere; real builds need TensorRT + a GPU."""

from __future__ import annotations

import shlex
import shutil

import pytest

from edge_clipguard.bundle import MANIFEST_NAME, Artifact, TensorSpec, read_manifest, sha256_file
from edge_clipguard.errors import ClipGuardError
from edge_clipguard.export.cli import register
from edge_clipguard.export.engine_step import (
    EngineSource,
    build_engine_command,
    build_engines_for_bundle,
    onnx_input_specs,
    plan_jobs,
    select_sources,
    updated_manifest,
)
from edge_clipguard.export.tensorrt_build import (
    EngineBuildConfig,
    EngineBuildError,
    profile_shapes,
    tensorrt_available,
    text_profile,
    trtexec_command,
)
from edge_clipguard.export.types import BatchProfile, ExportRequest

AVAILABLE, REASON = tensorrt_available()
needs_no_trt = pytest.mark.skipif(AVAILABLE, reason="TensorRT and a GPU are present: the no-TensorRT path is moot")


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    return out


def _sizes(manifest):
    return manifest.preprocess.max_text_length, manifest.preprocess.image_size


def test_trtexec_command_for_the_tiny_bundle(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    _, size = _sizes(manifest)
    cmd = trtexec_command(tiny_bundle / "model.int8.onnx", tiny_bundle / "model.int8.plan", manifest.inputs,
                          (1, 2, 8), 2 << 30, timing_cache="/tmp/tc.cache", text=(8, 8, 16))
    args = shlex.split(cmd)
    assert args[0] == "trtexec"
    assert f"--onnx={tiny_bundle / 'model.int8.onnx'}" in args
    assert f"--saveEngine={tiny_bundle / 'model.int8.plan'}" in args
    assert "--stronglyTyped" in args
    for flag, batch, length in (("--minShapes", 1, 8), ("--optShapes", 2, 8), ("--maxShapes", 8, 16)):
        expected = (f"{flag}=input_ids:{batch}x{length},attention_mask:{batch}x{length},"
                    f"pixel_values:{batch}x3x{size}x{size}")
        assert expected in args
    assert "--memPoolSize=workspace:2048M" in args
    assert "--timingCacheFile=/tmp/tc.cache" in args
    assert "\n" not in cmd


def test_profile_shapes_fix_every_axis_but_batch_and_text():
    specs = (TensorSpec("a", "int64", ("batch", 16)), TensorSpec("b", "float32", ("batch", 3, 64, 64)))
    shapes = profile_shapes(specs, 1, 4, 8)
    assert shapes == {"a": ((1, 16), (4, 16), (8, 16)), "b": ((1, 3, 64, 64), (4, 3, 64, 64), (8, 3, 64, 64))}
    with pytest.raises(EngineBuildError, match="only a leading batch axis and the axes with a profile"):
        profile_shapes((TensorSpec("c", "int64", ("batch", "length")),), 1, 1, 2)


def test_profile_shapes_give_the_text_axis_its_own_range():
    shapes = profile_shapes((TensorSpec("ids", "int64", ("batch", "text_length")),), 1, 2, 8, text=(8, 16, 64))
    assert shapes == {"ids": ((1, 8), (2, 16), (8, 64))}
    with pytest.raises(EngineBuildError, match="'text_length'"):
        profile_shapes((TensorSpec("ids", "int64", ("batch", "text_length")),), 1, 2, 8)


def test_text_profile_tunes_for_the_second_shortest_padding_length():
    assert text_profile((8, 16, 32, 64)) == (8, 16, 64)
    assert text_profile((64,)) == (64, 64, 64)


def test_build_config_rejects_a_bad_profile():
    with pytest.raises(EngineBuildError, match="min <= opt <= max"):
        EngineBuildConfig(min_batch=4, opt_batch=2, max_batch=8)


def test_tensorrt_available_names_what_is_missing():
    import importlib.util

    ok, reason = tensorrt_available()
    assert "\n" not in reason and reason
    if importlib.util.find_spec("tensorrt") is None:
        assert not ok
        assert "TensorRT is not installed" in reason
    elif not ok:
        assert "GPU" in reason or "TensorRT" in reason or "cuda-python" in reason
    else:
        assert reason.startswith("TensorRT ")


@needs_no_trt
def test_export_step_auto_without_tensorrt_prints_both_commands(bundle_copy, tmp_path):
    manifest = read_manifest(bundle_copy)
    length, size = _sizes(manifest)
    final = tmp_path / "final_bundle"
    req = ExportRequest(checkpoint="unused.pt", out=str(final), engine="auto", batch=BatchProfile(1, 2, 4),
                        workspace_gib=1.5)
    before = sorted(p.name for p in bundle_copy.iterdir())
    artifacts, rows, notes = build_engines_for_bundle(bundle_copy, list(manifest.artifacts), req,
                                                      manifest.preprocess.text_lengths, log=lambda *_: None)
    assert artifacts == [] and rows == []
    assert len(notes) == 1 and "\n" not in notes[0]
    note = notes[0]
    assert REASON in note
    assert f"edge-clipguard build-engine {final} --batch 1:2:4 --workspace 1.5" in note
    assert f"trtexec --onnx={final / 'model.fp32.onnx'} --saveEngine={final / 'model.fp32.plan'}" in note
    assert f"--maxShapes=input_ids:4x{length},attention_mask:4x{length},pixel_values:4x3x{size}x{size}" in note
    assert "--minShapes=input_ids:1x8,attention_mask:1x8" in note  # the text axis spans the padding lengths
    assert "--memPoolSize=workspace:1536M" in note
    assert sorted(p.name for p in bundle_copy.iterdir()) == before


@needs_no_trt
def test_export_step_always_without_tensorrt_is_a_one_line_error(bundle_copy):
    req = ExportRequest(checkpoint="unused.pt", out=str(bundle_copy), engine="always")
    with pytest.raises(ClipGuardError) as info:
        build_engines_for_bundle(bundle_copy, list(read_manifest(bundle_copy).artifacts), req, (8, 16),
                                 log=lambda *_: None)
    assert isinstance(info.value, EngineBuildError)
    message = str(info.value)
    assert "\n" not in message and "--engine always" in message and REASON in message


def test_export_step_never_does_nothing(bundle_copy):
    req = ExportRequest(checkpoint="unused.pt", out=str(bundle_copy), engine="never")
    assert build_engines_for_bundle(bundle_copy, [], req, (8, 16)) == ([], [], [])


def _onnx(file, precision, target="any", quant=None):
    return Artifact(file, "onnx", precision, target, quant, {})


FULL = [_onnx("model.fp32.onnx", "fp32"), _onnx("model.fp16.onnx", "fp16"),
        _onnx("model.int8.onnx", "int8", "tensorrt", "qdq-s8s8"),
        _onnx("model.int8-cpu.onnx", "int8", "onnxruntime-cpu", "qdq-u8s8")]


def test_default_sources_are_int8_and_fp16_never_the_cpu_int8():
    sources = select_sources(FULL, None, fp16_flag_available=True)
    assert [(s.precision, s.onnx.file, s.fp16_flag) for s in sources] == [
        ("int8", "model.int8.onnx", False), ("fp16", "model.fp16.onnx", False)]
    assert [s.engine_file for s in sources] == ["model.int8.plan", "model.fp16.plan"]
    only_fp32 = select_sources([FULL[0], FULL[3]], None, fp16_flag_available=True)
    assert [(s.precision, s.onnx.file) for s in only_fp32] == [("fp32", "model.fp32.onnx")]
    with pytest.raises(EngineBuildError, match="no ONNX file for TensorRT"):
        select_sources([FULL[3]], None, fp16_flag_available=True)


def test_explicit_fp16_falls_back_to_the_flag_only_where_it_exists():
    fp32_only = [FULL[0]]
    [source] = select_sources(fp32_only, ("fp16",), fp16_flag_available=True)
    assert (source.precision, source.onnx.file, source.fp16_flag) == ("fp16", "model.fp32.onnx", True)
    with pytest.raises(EngineBuildError, match="export --fp16"):
        select_sources(fp32_only, ("fp16",), fp16_flag_available=False)
    with pytest.raises(EngineBuildError, match="export --int8"):
        select_sources([FULL[0], FULL[3]], ("int8",), fp16_flag_available=True)
    both = select_sources(FULL, ("fp32", "int8"), fp16_flag_available=False)
    assert [(s.precision, s.onnx.file) for s in both] == [("fp32", "model.fp32.onnx"), ("int8", "model.int8.onnx")]


def _fp32_source(manifest) -> EngineSource:
    [source] = select_sources(manifest.artifacts, ("fp32",), fp16_flag_available=False)
    return source


def test_plan_jobs_build_a_cut_artifact_whole_and_as_its_two_parts(tiny_bundle, tmp_path):
    manifest = read_manifest(tiny_bundle)
    source = _fp32_source(manifest)
    jobs = plan_jobs(source, tiny_bundle.joinpath, tmp_path.joinpath, manifest.inputs, manifest.part_inputs())
    assert [(j.onnx.name, j.plan.name) for j in jobs] == [
        ("model.fp32.onnx", "model.fp32.plan"), ("model.fp32.text.onnx", "model.fp32.text.plan"),
        ("model.fp32.fusion.onnx", "model.fp32.fusion.plan")]
    assert [spec.name for spec in jobs[1].inputs] == ["input_ids", "attention_mask"]
    assert [spec.name for spec in jobs[2].inputs] == ["text_features", "attention_mask", "pixel_values"]
    assert (source.engine_parts.text, source.engine_parts.fusion) == ("model.fp32.text.plan",
                                                                       "model.fp32.fusion.plan")


def test_plan_jobs_of_an_uncut_artifact_build_the_whole_graph_only(tiny_bundle, tmp_path):
    manifest = read_manifest(tiny_bundle)
    source = _fp32_source(manifest)
    uncut = EngineSource(source.precision, Artifact(source.onnx.file, source.onnx.kind, source.onnx.precision))
    jobs = plan_jobs(uncut, tiny_bundle.joinpath, tmp_path.joinpath, manifest.inputs, None)
    assert [j.plan.name for j in jobs] == ["model.fp32.plan"] and uncut.engine_parts is None


def test_part_graphs_declare_the_inputs_the_manifest_gives_their_engines(tiny_bundle):
    """Export builds part engines from the part files' own inputs, build-engine from the manifest's: the same."""
    manifest = read_manifest(tiny_bundle)
    parts = _fp32_source(manifest).onnx.parts
    text, fusion = manifest.part_inputs()
    assert onnx_input_specs(tiny_bundle / parts.text) == text
    assert onnx_input_specs(tiny_bundle / parts.fusion) == fusion


def test_fusion_part_profile_ranges_text_features_over_batch_and_text_length(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    _, fusion = manifest.part_inputs()
    dim = manifest.text_features.shape[-1]
    shapes = profile_shapes(fusion, 1, 2, 8, text=(8, 16, 32))
    assert shapes["text_features"] == ((1, 8, dim), (2, 16, dim), (8, 32, dim))
    assert shapes["attention_mask"] == ((1, 8), (2, 16), (8, 32))


def test_a_manifest_takes_an_engine_with_part_plans(tiny_bundle, tmp_path):
    from dataclasses import replace

    from edge_clipguard.bundle import check_meaning, engine_parts

    manifest = read_manifest(tiny_bundle)
    engine = Artifact("model.fp32.plan", "tensorrt-engine", "fp32", "tensorrt", None,
                      {"tensorrt_version": "10.9.0", "compute_capability": "8.7"}, parts=engine_parts("fp32"))
    files = {name: "c" * 64 for name in engine.member_files()}
    with_engine = updated_manifest(manifest, [engine], files, "10.9.0")
    check_meaning(with_engine)
    assert with_engine.artifact("model.fp32.plan").member_files() == (
        "model.fp32.plan", "model.fp32.text.plan", "model.fp32.fusion.plan")
    with pytest.raises(ClipGuardError, match="text_features"):
        check_meaning(replace(with_engine, text_features=None,
                                  artifacts=tuple(a for a in with_engine.artifacts if a.kind == "tensorrt-engine")))


def test_updated_manifest_keeps_artifacts_and_replaces_a_rebuilt_engine(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    old_engine = Artifact("model.fp32.plan", "tensorrt-engine", "fp32", "tensorrt", None, {"tensorrt_version": "1"})
    first = updated_manifest(manifest, [old_engine], {"model.fp32.plan": "a" * 64}, "10.0.0")
    new_engine = Artifact("model.fp32.plan", "tensorrt-engine", "fp32", "tensorrt", None, {"tensorrt_version": "2"})
    second = updated_manifest(first, [new_engine], {"model.fp32.plan": "b" * 64}, "10.1.0")
    assert [a.file for a in second.artifacts] == [*(a.file for a in manifest.artifacts), "model.fp32.plan"]
    assert second.artifact("model.fp32.plan").details == {"tensorrt_version": "2"}
    assert second.files["model.fp32.plan"] == "b" * 64
    assert all(second.files[k] == v for k, v in manifest.files.items())
    assert second.versions["tensorrt"] == "10.1.0"


@needs_no_trt
def test_build_engine_cli_without_tensorrt_leaves_the_bundle_alone(bundle_copy):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["build-engine", str(bundle_copy), "--batch", "1:2:4", "--precision", "fp32"])
    assert (args.batch, args.precision, args.workspace) == ("1:2:4", "fp32", 2.0)
    manifest_before = (bundle_copy / MANIFEST_NAME).read_bytes()
    with pytest.raises(EngineBuildError) as info:
        args.handler(args)
    assert "\n" not in str(info.value) and REASON in str(info.value)
    assert (bundle_copy / MANIFEST_NAME).read_bytes() == manifest_before
    assert not list(bundle_copy.glob("*.plan"))


# -- real TensorRT -----------------------------------------------------------------------------------------
def _require_trt():
    pytest.importorskip("tensorrt")
    if not AVAILABLE:
        pytest.skip(f"needs TensorRT and a GPU: {REASON}")


def test_build_engine_command_builds_and_records_the_engine(bundle_copy, tmp_path):
    _require_trt()
    import tensorrt as trt

    cache = tmp_path / "timing.cache"
    result = build_engine_command(bundle_copy, BatchProfile(1, 2, 4), 1.0, ("fp32",), log=lambda *_: None,
                                  timing_cache=cache)
    plan = bundle_copy / "model.fp32.plan"
    assert plan.is_file() and cache.is_file()
    manifest = read_manifest(bundle_copy)
    art = manifest.artifact("model.fp32.plan")
    assert (art.kind, art.precision, art.target) == ("tensorrt-engine", "fp32", "tensorrt")
    assert art.details["tensorrt_version"] == trt.__version__
    assert art.details["batch"] == {"min": 1, "opt": 2, "max": 4}
    assert art.details["source_onnx"] == "model.fp32.onnx"
    assert manifest.files["model.fp32.plan"] == sha256_file(plan)
    assert (art.parts.text, art.parts.fusion) == ("model.fp32.text.plan", "model.fp32.fusion.plan")
    for name in (art.parts.text, art.parts.fusion):  # the parts' own engines, hashed like the whole
        assert manifest.files[name] == sha256_file(bundle_copy / name)
    assert {a.file for a in manifest.artifacts} >= {a.file for a in read_manifest(bundle_copy).artifacts}
    assert result.manifest == manifest
    # The plan is a plain TensorRT plan: the runtime deserializes it without any header handling.
    engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(plan.read_bytes())
    assert engine is not None and engine.num_io_tensors == len(manifest.inputs) + len(manifest.outputs)


def test_parser_errors_become_one_line(tmp_path, tiny_bundle):
    _require_trt()
    from edge_clipguard.export.tensorrt_build import build_engine

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx protobuf")
    with pytest.raises(EngineBuildError) as info:
        build_engine(broken, tmp_path / "x.plan", read_manifest(tiny_bundle).inputs,
                     EngineBuildConfig(timing_cache=tmp_path / "tc"), log=lambda *_: None)
    assert "ONNX parser failed" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x.plan").exists()

