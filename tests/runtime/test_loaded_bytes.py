"""What runs is what was checked: the artifact's bytes are read once, checked, and handed to the backend."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edge_clipguard.bundle import IntegrityError
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.backends import onnxruntime_runner

IMAGE = np.random.default_rng(5).integers(0, 256, (40, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def other_bundle(tmp_path_factory, tiny_cfg, tiny_tokenizer):
    """A tiny fp32 bundle of differently seeded weights: its model.fp32.onnx is a valid, different model."""
    import torch

    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest
    from edge_clipguard.model import build_model
    from edge_clipguard.train.checkpoint import save_checkpoint

    torch.manual_seed(1)
    work = tmp_path_factory.mktemp("other")
    checkpoint = save_checkpoint(work / "other.pt", model=build_model(tiny_cfg).eval(), model_cfg=tiny_cfg,
                                 tokenizer_json=tiny_tokenizer.to_str(), step=0, epoch=0)
    export_bundle(ExportRequest(checkpoint=str(checkpoint), out=str(work / "bundle"), engine="never"),
                  log=lambda *_: None)
    return work / "bundle"


def _score(bundle) -> float:
    with Predictor.load(bundle, backend="onnxruntime", device="cpu", threads=1) as pred:
        return pred.predict("a red star", IMAGE).score


def test_an_artifact_swapped_after_its_check_never_runs(tiny_bundle, other_bundle, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    original, other = _score(tiny_bundle), _score(other_bundle)
    assert abs(original - other) > 1e-3  # the swap would be visible in the score
    real_activate = onnxruntime_runner.OnnxRuntimeRunner.activate_impl

    def swap_then_activate(runner):  # the file changes after it was read and checked, before the session starts
        shutil.copyfile(other_bundle / "model.fp32.onnx", bundle / "model.fp32.onnx")
        real_activate(runner)

    monkeypatch.setattr(onnxruntime_runner.OnnxRuntimeRunner, "activate_impl", swap_then_activate)
    with Predictor.load(bundle, backend="onnxruntime", device="cpu", threads=1) as pred:
        assert pred.predict("a red star", IMAGE).score == pytest.approx(original, abs=1e-6)


def test_an_artifact_changed_before_load_is_refused(tiny_bundle, other_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    shutil.copyfile(other_bundle / "model.fp32.fusion.onnx", bundle / "model.fp32.fusion.onnx")
    with pytest.raises(IntegrityError, match=r"model\.fp32\.fusion\.onnx: sha256 .* differs from the manifest's"):
        Predictor.load(bundle, backend="onnxruntime", device="cpu", threads=1)


def test_an_unused_artifact_is_not_read_at_load(tiny_int8_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_int8_bundle.bundle, bundle)
    (bundle / "model.int8-cpu.text.onnx").write_bytes(b"changed")  # what ONNX Runtime runs for int8 on a CPU
    with Predictor.load(bundle, backend="onnxruntime", device="cpu", precision="fp32", threads=1) as pred:
        assert 0.0 <= pred.predict("a red star", IMAGE).score <= 10.0
    with pytest.raises(IntegrityError, match=r"model\.int8-cpu\.text\.onnx"):
        Predictor.load(bundle, backend="onnxruntime", device="cpu", precision="int8", threads=1)


def test_a_bundle_model_file_carries_the_digest_its_bytes_were_checked_against(tiny_bundle):
    from edge_clipguard.bundle import sha256_bytes
    from edge_clipguard.runtime.backends import model_file
    from edge_clipguard.runtime.opened_bundle import open_bundle

    bundle = open_bundle(tiny_bundle)
    model = model_file(bundle, "model.fp32.onnx")
    assert model.checked_sha256 == bundle.manifest.files["model.fp32.onnx"]
    assert model.sha256 == sha256_bytes(model.data)
