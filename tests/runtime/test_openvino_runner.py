"""OpenVINO backend: same outputs as ONNX Runtime on the tiny bundle's files; skipped without openvino."""

from __future__ import annotations

import numpy as np
import pytest

from edge_clipguard.runtime import Predictor

pytest.importorskip("openvino")

TEXTS = ["About the stars: lovely.", "The red circle is broken!", "About the crosses: meh."]


def _outputs(bundle, backend, images, **options):
    with Predictor.load(bundle, backend=backend, device="cpu", threads=1, **options) as predictor:
        tokens = predictor.tokenize(TEXTS)
        pixels = predictor.preprocess(images)
        return predictor.infer(tokens, pixels), predictor.describe()


def test_openvino_fp32_outputs_match_onnxruntime(tiny_bundle, images):
    ov, described = _outputs(tiny_bundle, "openvino", images)
    ort, _ = _outputs(tiny_bundle, "onnxruntime", images)
    assert "openvino cpu" in described and "f32 inference" in described
    np.testing.assert_allclose(ov["score"], ort["score"], atol=1e-3)
    np.testing.assert_allclose(ov["confidences"], ort["confidences"], atol=1e-3)
    same_order = (ov["labels"] == ort["labels"]).all(axis=-1)  # ties in top-K may permute, compare boxes elsewhere
    np.testing.assert_allclose(ov["boxes"][same_order], ort["boxes"][same_order], atol=1e-2)


def test_openvino_int8_runs_the_tensorrt_qdq_file(tiny_int8_bundle, images):
    with Predictor.load(tiny_int8_bundle.bundle, backend="openvino", device="cpu", precision="int8",
                        threads=1) as predictor:
        result = predictor.predict_batch(TEXTS, images)
        assert predictor.artifact.file == "model.int8.onnx"
    assert len(result) == 3 and all(0.0 <= r.score <= 10.0 for r in result)


def test_openvino_int8_score_stays_near_fp32(tiny_int8_bundle, images):
    int8, _ = _outputs(tiny_int8_bundle.bundle, "openvino", images, precision="int8")
    fp32, _ = _outputs(tiny_int8_bundle.bundle, "onnxruntime", images, precision="fp32")
    assert np.abs(int8["score"] - fp32["score"]).max() < 1.0  # the export's own INT8 guard bounds it the same way


def test_openvino_refuses_cuda(tiny_bundle):
    from edge_clipguard.bundle import BundleError

    with pytest.raises(BundleError, match="openvino runs on the CPU"):
        Predictor.load(tiny_bundle, backend="openvino", device="cuda")


def test_openvino_normalising_in_graph_matches_numpy_normalise(tiny_bundle, images):
    from edge_clipguard.bundle import read_manifest
    from edge_clipguard.runtime.backends.openvino_runner import OpenVinoConfig, OpenVinoRunner
    from edge_clipguard.runtime.image_stage import ImageStage

    manifest = read_manifest(tiny_bundle)
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as ort:
        tokens = ort.tokenize(TEXTS)
    from edge_clipguard.image_io import load_pixels

    pixels = [load_pixels(image) for image in images]
    canvases = ImageStage(manifest.preprocess, normalize=False)(pixels).pixel_values
    normalised = ImageStage(manifest.preprocess)(pixels).pixel_values
    assert canvases.dtype == np.uint8 and canvases.shape[-1] == 3
    feeds = {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask}
    path = tiny_bundle / "model.fp32.onnx"
    with OpenVinoRunner(path, manifest.inputs, manifest.outputs, OpenVinoConfig(threads=1)) as plain, \
            OpenVinoRunner(path, manifest.inputs, manifest.outputs,
                           OpenVinoConfig(threads=1, normalize=manifest.preprocess)) as in_graph:
        want = plain.infer({**feeds, "pixel_values": normalised})
        got = in_graph.infer({**feeds, "pixel_values": canvases})
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-4)
    np.testing.assert_allclose(got["confidences"], want["confidences"], atol=1e-4)


def test_openvino_predictor_still_hands_other_engines_the_graphs_float_pixels(tiny_bundle, images):
    with Predictor.load(tiny_bundle, backend="openvino", device="cpu", threads=1) as ov, \
            Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as ort:
        assert ov.preprocess(images).pixel_values.dtype == np.uint8  # OpenVINO normalises in its graph
        np.testing.assert_array_equal(ov.graph_pixels(images).pixel_values, ort.preprocess(images).pixel_values)


def test_a_signal_after_two_predictors_closed_is_handled_not_a_crash(tiny_bundle):
    """OpenVINO's CPU plugin swaps the thread's alternate signal stack per Core; with a Core per runner, closing two
    left it pointing at freed memory and the next SIGTERM crashed the process. One shared Core: it is handled."""
    import subprocess
    import sys

    script = f"""
import os, signal, numpy as np
from edge_clipguard.runtime import Predictor
image = np.zeros((40, 64, 3), np.uint8)
for _ in range(2):
    with Predictor.load({str(tiny_bundle)!r}, backend="openvino", device="cpu", threads=1, compile_cache=False) as p:
        p.predict("a red star", image)
signal.signal(signal.SIGTERM, lambda *a: print("handled"))
os.kill(os.getpid(), signal.SIGTERM)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "handled", done.stderr[-500:]
