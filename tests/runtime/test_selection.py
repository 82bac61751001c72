"""Artifact selection is a pure function of the manifest: tested on manifests with synthetic artifact lists."""

from dataclasses import replace

import pytest

from edge_clipguard.bundle import Artifact, BundleError, read_manifest
from edge_clipguard.runtime import selection
from edge_clipguard.runtime.selection import choose

FP32 = Artifact("model.fp32.onnx", "onnx", "fp32")
FP16 = Artifact("model.fp16.onnx", "onnx", "fp16")
INT8_TRT = Artifact("model.int8.onnx", "onnx", "int8", "tensorrt", "qdq-s8s8")
INT8_CPU = Artifact("model.int8-cpu.onnx", "onnx", "int8", "onnxruntime-cpu", "qdq-u8s8")
ENGINE = Artifact("model.int8.plan", "tensorrt-engine", "int8", "tensorrt")


@pytest.fixture(scope="module")
def manifest(tiny_bundle):
    return replace(read_manifest(tiny_bundle), artifacts=(FP32, FP16, INT8_TRT, INT8_CPU, ENGINE))


def test_int8_on_ort_cpu_prefers_the_cpu_tuned_artifact(manifest):
    assert choose(manifest, "onnxruntime", "cpu", "int8").artifact == INT8_CPU


def test_int8_on_ort_cpu_falls_back_to_the_tensorrt_qdq_artifact(manifest):
    only_trt = replace(manifest, artifacts=(FP32, INT8_TRT))
    assert choose(only_trt, "onnxruntime", "cpu", "int8").artifact == INT8_TRT


def test_default_precision_on_cpu_is_fp32(manifest):
    assert choose(manifest, "onnxruntime", "cpu", None).artifact == FP32


def test_default_precision_on_ort_cuda_is_fp16(manifest):
    assert choose(manifest, "onnxruntime", "cuda", None).artifact == FP16


def test_int8_on_ort_cuda_is_refused(manifest):
    with pytest.raises(BundleError, match="tensorrt"):
        choose(manifest, "onnxruntime", "cuda", "int8")


def test_tensorrt_picks_the_engine(manifest):
    choice = choose(manifest, "tensorrt", "cuda", None)
    assert (choice.backend, choice.artifact) == ("tensorrt", ENGINE)


def test_auto_on_cpu_never_picks_tensorrt(manifest):
    assert choose(manifest, "auto", "cpu", "int8").backend != "tensorrt"


def test_auto_on_an_x86_cpu_with_openvino_picks_openvino(manifest, monkeypatch):
    monkeypatch.setattr(selection, "openvino_preferred", lambda: True)
    choice = choose(manifest, "auto", "cpu", None)
    assert (choice.backend, choice.device, choice.artifact) == ("openvino", "cpu", FP32)


def test_auto_on_a_cpu_without_openvino_picks_onnxruntime(manifest, monkeypatch):
    monkeypatch.setattr(selection, "openvino_preferred", lambda: False)
    assert choose(manifest, "auto", "cpu", "int8").artifact == INT8_CPU


def test_int8_on_openvino_prefers_the_tensorrt_style_qdq_file(manifest):
    assert choose(manifest, "openvino", "cpu", "int8").artifact == INT8_TRT


def test_fp16_on_openvino_is_the_fp32_file_in_reduced_precision(manifest):
    choice = choose(manifest, "openvino", "auto", "fp16")
    assert (choice.precision, choice.artifact) == ("fp16", FP32)


def test_openvino_on_cuda_is_refused(manifest):
    with pytest.raises(BundleError, match="openvino runs on the CPU"):
        choose(manifest, "openvino", "cuda", None)


def test_explicit_artifact_is_used(manifest):
    choice = choose(manifest, "auto", "cpu", None, artifact="model.int8.onnx")
    assert (choice.backend, choice.artifact) == ("onnxruntime", INT8_TRT)


def test_unknown_backend_is_a_bundle_error(manifest):
    with pytest.raises(BundleError, match="backend 'tvm'"):
        choose(manifest, "tvm", "cpu", None)


def test_tensorrt_style_int8_on_ort_cpu_comes_with_advice(manifest):
    from edge_clipguard.runtime.selection import slow_path_advice

    only_trt = replace(manifest, artifacts=(FP32, INT8_TRT))
    assert "openvino" in slow_path_advice(choose(only_trt, "onnxruntime", "cpu", "int8"))
    assert slow_path_advice(choose(manifest, "onnxruntime", "cpu", "int8")) is None
