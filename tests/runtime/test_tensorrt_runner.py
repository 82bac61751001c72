"""TensorRT runner: compatibility checks and error paths run everywhere; inference needs TensorRT + a GPU."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from edge_clipguard.bundle import Artifact, EngineFacts, read_manifest
from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime.backends.tensorrt_runner import (
    EngineMismatchError,
    TensorRTRunner,
    check_engine_compatible,
)
from edge_clipguard.runtime.errors import BackendError

BUILT_DETAILS = {"tensorrt_version": "10.3.0.30", "compute_capability": "8.7", "gpu_name": "Orin"}
BUILT = EngineFacts("10.3.0.30", "8.7", "Orin")


def test_same_version_and_architecture_is_accepted():
    check_engine_compatible(BUILT, "10.3.0.30", "8.7")
    # Only major.minor.patch matters: a different build number of the same release loads the same plans.
    check_engine_compatible(BUILT, "10.3.0.26", "8.7")


def test_another_tensorrt_version_is_refused_naming_both():
    with pytest.raises(EngineMismatchError) as info:
        check_engine_compatible(BUILT, "10.8.0.43", "8.7", engine="model.int8.plan")
    message = str(info.value)
    assert isinstance(info.value, BackendError) and isinstance(info.value, ClipGuardError)
    assert "10.3.0" in message and "10.8.0" in message and "model.int8.plan" in message
    assert "build-engine" in message and "\n" not in message


def test_another_gpu_architecture_is_refused_naming_both():
    with pytest.raises(EngineMismatchError) as info:
        check_engine_compatible(BUILT, "10.3.0.30", "9.0")
    message = str(info.value)
    assert "8.7" in message and "9.0" in message and "Orin" in message and "\n" not in message


def test_an_engine_without_recorded_versions_is_refused():
    with pytest.raises(EngineMismatchError, match="records no tensorrt_version"):
        check_engine_compatible(Artifact("m.plan", "tensorrt-engine", "fp32", "tensorrt", None,
                                         {"compute_capability": "8.7"}).engine_facts(), "10.3.0", "8.7")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_activate_without_tensorrt_gives_the_install_hint(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    artifact = Artifact("model.fp32.plan", "tensorrt-engine", "fp32", "tensorrt", None, dict(BUILT_DETAILS))
    runner = TensorRTRunner(tiny_bundle / "model.fp32.plan", artifact, manifest.inputs, manifest.outputs)
    with pytest.raises(BackendError) as info:
        runner.activate()
    assert "TensorRT is not installed" in str(info.value) and "edge-clipguard[trt]" in str(info.value)
    assert not runner.active


# -- real TensorRT -----------------------------------------------------------------------------------------
@pytest.fixture()
def engine_bundle(tiny_bundle, tmp_path):
    pytest.importorskip("tensorrt")
    from edge_clipguard.export.bundle_writer import BatchProfile
    from edge_clipguard.export.engine_step import build_engine_command
    from edge_clipguard.export.tensorrt_build import tensorrt_available

    ok, reason = tensorrt_available()
    if not ok:
        pytest.skip(f"needs TensorRT and a GPU: {reason}")
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    build_engine_command(out, BatchProfile(1, 2, 4), 1.0, ("fp32",), log=lambda *_: None,
                         timing_cache=tmp_path / "tc")
    return out


def _feed(manifest, batch, seed, length=None):
    rng = np.random.default_rng(seed)
    length, size = length or manifest.preprocess.max_text_length, manifest.preprocess.image_size
    ids = rng.integers(1, 1000, size=(batch, length), dtype=np.int64)
    mask = np.ones((batch, length), dtype=np.int64)
    mask[:, length // 2:] = 0
    pixels = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels}


def test_engine_matches_pytorch_detections_with_and_without_graphs(engine_bundle, tiny_checkpoint):
    """Score, and boxes/confidences/labels through export's order-independent detection matcher against the
    PyTorch model's dense decode, across CUDA-graph capture and replay, batch sizes and text lengths."""
    from edge_clipguard.export.detections import compare_outputs
    from edge_clipguard.export.onnx_export import run_torch
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model

    model, _ = restore_model(load_checkpoint(tiny_checkpoint))
    manifest = read_manifest(engine_bundle)
    artifact = manifest.artifact("model.fp32.plan")
    runner = TensorRTRunner(engine_bundle / "model.fp32.plan", artifact, manifest.inputs, manifest.outputs)
    with runner:
        # batch 1 three times: normal run, graph capture + replay, replay; then other shapes and back.
        for step, (batch, length) in enumerate(((1, 16), (1, 16), (1, 16), (3, 16), (3, 8), (1, 8), (1, 16))):
            feed = _feed(manifest, batch, seed=step, length=length)
            errors = {e.name: e for e in compare_outputs(run_torch(model, feed), runner.infer(feed), 1e-3)}
            assert errors["score"].max_abs <= 1e-3, (batch, length, errors)
            assert errors["labels"].max_abs == 0 and errors["confidences"].max_abs <= 1e-3, (batch, length, errors)
            assert errors["boxes"].max_abs <= 1e-2, (batch, length, errors)
        assert {(("batch", 1), ("text_length", 16)), (("batch", 3), ("text_length", 16))} <= set(runner._graphs)
        with pytest.raises(ClipGuardError, match="outside the engine's profile"):
            runner.infer(_feed(manifest, 5, seed=0))
    assert not runner.active and runner._buffers == {}


def test_engine_from_another_tensorrt_version_is_refused_at_activate(engine_bundle):
    manifest = read_manifest(engine_bundle)
    art = manifest.artifact("model.fp32.plan")
    other = Artifact(art.file, art.kind, art.precision, art.target, art.quant_format,
                     {**art.details, "tensorrt_version": "9.0.0.1"})
    runner = TensorRTRunner(engine_bundle / art.file, other, manifest.inputs, manifest.outputs)
    with pytest.raises(EngineMismatchError, match="9.0.0"):
        runner.activate()
    assert not runner.active


def test_the_part_engines_with_cached_features_give_the_whole_engines_results(engine_bundle):
    from edge_clipguard.runtime import Predictor
    from edge_clipguard.runtime.text_features import SplitRunner

    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    texts = ["a red star", "two blue circles", "a red star"]
    options = dict(backend="tensorrt", min_confidence=0.0, nms_iou=1.0)
    with Predictor.load(engine_bundle, **options) as split, \
            Predictor.load(engine_bundle, text_feature_cache_bytes=0, **options) as whole:
        assert isinstance(split.runner, SplitRunner) and not isinstance(whole.runner, SplitRunner)
        first, again = split.predict_batch(texts, frames), split.predict_batch(texts, frames)
        reference = whole.predict_batch(texts, frames)
        assert split.runner.text_calls == 1
    for got in (first, again):
        np.testing.assert_allclose([r.score for r in got], [r.score for r in reference], atol=1e-3)
