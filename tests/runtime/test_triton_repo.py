"""serve --write-repo: a standard Triton model repository whose configs parse as Triton's ModelConfig protobuf."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import pytest

from edge_clipguard.bundle import ENGINE, Artifact, read_manifest, sha256_file
from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime.cli import register
from edge_clipguard.runtime.triton_repo import model_config_text, model_name, write_triton_repo

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                                       reason="needs the [serve] extra (tritonclient[grpc] ships the schema)")
text_format = pytest.importorskip("google.protobuf.text_format")


def parse(text: str):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_repository_configs_parse_and_match_the_bundle(tiny_bundle, tmp_path):
    manifest = read_manifest(tiny_bundle)
    out = tmp_path / "repo"
    written = write_triton_repo(tiny_bundle, out, max_batch=8, max_queue_delay_us=500)
    wholes = [(name, file) for name, file in written if file in {a.file for a in manifest.artifacts}]
    assert [f for _, f in wholes] == [a.file for a in manifest.artifacts]
    for name, file in wholes:
        config = parse((out / name / "config.pbtxt").read_text())
        assert config.name == name and config.backend == "onnxruntime" and config.max_batch_size == 8
        assert config.dynamic_batching.max_queue_delay_microseconds == 500
        assert [i.name for i in config.input] == [t.name for t in manifest.inputs]
        assert [list(i.dims) for i in config.input] == [[-1 if d == "text_length" else d for d in t.shape[1:]]
                                                        for t in manifest.inputs]  # -1: Triton's variable size
        assert model_config_pb2.DataType.Name(config.input[0].data_type) == "TYPE_INT64"
        score, boxes = config.output[0], config.output[1]
        assert list(score.dims) == [1] and score.HasField("reshape") and list(score.reshape.shape) == []
        assert list(boxes.dims) == [manifest.top_k, 4]
        assert model_config_pb2.DataType.Name(config.output[3].data_type) == "TYPE_INT64"  # labels
        assert json.loads(config.parameters["class_names"].string_value) == list(manifest.class_names)
        copied = out / name / "1" / "model.onnx"
        assert sha256_file(copied) == manifest.files[file]


def test_a_cut_artifact_is_served_as_its_parts_and_an_ensemble_of_them(tiny_bundle, tmp_path):
    manifest = read_manifest(tiny_bundle)
    out = tmp_path / "repo"
    written = dict(write_triton_repo(tiny_bundle, out, max_batch=8))
    assert written["clipguard_fp32_text"] == "model.fp32.text.onnx"
    assert written["clipguard_fp32_fusion"] == "model.fp32.fusion.onnx"
    text = parse((out / "clipguard_fp32_text" / "config.pbtxt").read_text())
    assert [i.name for i in text.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in text.output] == ["text_features"]
    assert list(text.output[0].dims) == [-1, manifest.text_features.shape[-1]]
    fusion = parse((out / "clipguard_fp32_fusion" / "config.pbtxt").read_text())
    assert [i.name for i in fusion.input] == ["text_features", "attention_mask", "pixel_values"]
    assert [o.name for o in fusion.output] == [t.name for t in manifest.outputs]
    assert sha256_file(out / "clipguard_fp32_fusion" / "1" / "model.onnx") == manifest.files["model.fp32.fusion.onnx"]
    ensemble = parse((out / "clipguard_fp32_ensemble" / "config.pbtxt").read_text())
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 8
    assert [i.name for i in ensemble.input] == [t.name for t in manifest.inputs]
    assert [o.name for o in ensemble.output] == [t.name for t in manifest.outputs]
    first, second = ensemble.ensemble_scheduling.step
    assert (first.model_name, second.model_name) == ("clipguard_fp32_text", "clipguard_fp32_fusion")
    assert dict(first.output_map) == {"text_features": "text_features"}
    assert dict(second.input_map)["text_features"] == "text_features"


def test_plan_and_cpu_artifacts_get_their_backend_kind_and_batch_cap(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    plan = Artifact("model.int8.plan", ENGINE, "int8", "tensorrt", details={
        "tensorrt_version": "10.3.0", "compute_capability": "8.7", "batch": {"min": 1, "opt": 4, "max": 4}})
    assert model_name(plan) == "clipguard_int8_plan"
    config = parse(model_config_text(manifest, plan, model_name(plan), max_batch=16))
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_GPU"
    cpu = replace(manifest.artifacts[0], file="model.int8-cpu.onnx", target="onnxruntime-cpu")
    assert model_name(cpu) == "clipguard_int8_cpu"
    config = parse(model_config_text(manifest, cpu, model_name(cpu)))
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_CPU"


def test_write_repo_refuses_a_non_empty_directory_and_a_tampered_file(tiny_bundle, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(ClipGuardError, match="not an empty directory"):
        write_triton_repo(tiny_bundle, tmp_path / "taken")
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    with open(copy / read_manifest(copy).artifacts[0].file, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ClipGuardError, match="sha256"):
        write_triton_repo(copy, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_cli_serve_write_repo(tiny_bundle, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", str(tiny_bundle), "--write-repo", str(tmp_path / "repo"), "--max-batch", "4"])
    args.handler(args)
    out = capsys.readouterr().out
    assert "clipguard_fp32: model.fp32.onnx" in out and "tritonserver --model-repository" in out
    assert parse((tmp_path / "repo" / "clipguard_fp32" / "config.pbtxt").read_text()).max_batch_size == 4


def test_names_with_quotes_and_non_ascii_survive_the_text_format(tiny_bundle):
    manifest = replace(read_manifest(tiny_bundle), class_names=("café", 'say "hi"', "back\\slash"))
    config = parse(model_config_text(manifest, manifest.artifacts[0], "clipguard_fp32"))
    assert json.loads(config.parameters["class_names"].string_value) == list(manifest.class_names)


def test_tritonserver_accepts_the_configs(tiny_bundle, tmp_path, free_ports):
    """PyTriton's tritonserver has only the python backend: a model whose config passes Triton's validation
    fails later, at 'unable to find backend library'; a bad config fails earlier with another message."""
    pytest.importorskip("pytriton")
    import subprocess

    from pytriton.triton import TRITONSERVER_DIST_DIR
    from pytriton.utils.distribution import get_libs_path

    write_triton_repo(tiny_bundle, tmp_path / "repo")
    plan = Artifact("model.int8.plan", ENGINE, "int8", "tensorrt", details={"batch": {"min": 1, "opt": 4, "max": 8}})
    (tmp_path / "repo" / "clipguard_int8_plan" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "clipguard_int8_plan" / "1" / "model.plan").write_bytes(b"not a real engine")
    (tmp_path / "repo" / "clipguard_int8_plan" / "config.pbtxt").write_text(
        model_config_text(read_manifest(tiny_bundle), plan, "clipguard_int8_plan"))
    server = TRITONSERVER_DIST_DIR / "bin" / "tritonserver"
    ports = [str(p) for p in free_ports(3)]
    run = subprocess.run([str(server), "--model-repository", str(tmp_path / "repo"),
                          "--backend-directory", str(TRITONSERVER_DIST_DIR / "backends"),
                          "--disable-auto-complete-config", "--exit-on-error=true", "--http-address", "127.0.0.1",
                          "--grpc-address", "127.0.0.1", "--http-port", ports[0], "--grpc-port", ports[1],
                          "--metrics-port", ports[2], "--allow-metrics=false"],
                         env={"LD_LIBRARY_PATH": str(get_libs_path())}, capture_output=True, text=True, timeout=60)
    log = run.stdout + run.stderr
    assert "failed to load 'clipguard_fp32' version 1: Invalid argument: unable to find backend library for " \
           "backend 'onnxruntime'" in log, log[-3000:]
    assert "failed to load 'clipguard_int8_plan' version 1: Invalid argument: unable to find backend library for " \
           "backend 'tensorrt'" in log, log[-3000:]
    assert "Poll failed" not in log
    # The ensemble's config passes too: Triton gets as far as its steps' models, which failed above.
    assert "ensemble 'clipguard_fp32_ensemble' depends on 'clipguard_fp32_fusion' which has no loaded version" in log



def test_cli_write_repo_checks_the_signature_first(signed_bundle, signing_keys, other_keys, tmp_path):
    from edge_clipguard.signing import SignatureError

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", str(signed_bundle), "--write-repo", str(tmp_path / "bad"),
                              "--verify-key", str(other_keys[1])])
    with pytest.raises(SignatureError):
        args.handler(args)
    assert not (tmp_path / "bad").exists()
    args = parser.parse_args(["serve", str(signed_bundle), "--write-repo", str(tmp_path / "repo"),
                              "--verify-key", str(signing_keys[1])])
    args.handler(args)
    assert (tmp_path / "repo" / "clipguard_fp32" / "1" / "model.onnx").is_file()
