"""Each text encoded once: a bundle's parts run in turn with a per-text feature cache between them, and give the
whole graph's results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_clipguard.bundle import BundleError, manifest_from_dict
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.text_features import FeatureCache, SplitRunner, row_keys

RNG = np.random.default_rng(3)
FRAMES = [RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(4)]
LONG = "About the stars: " + "really " * 30 + "good."


def _load(bundle, backend="onnxruntime", **options):
    if backend == "openvino":
        pytest.importorskip("openvino")
    return Predictor.load(bundle, backend=backend, device="cpu", threads=1, compile_cache=False, min_confidence=0.0,
                          nms_iou=1.0, **options)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_parts_with_cached_features_give_the_whole_graphs_results(tiny_bundle, backend):
    texts = ["a red star", LONG, "a red star", "two blue circles"]
    with _load(tiny_bundle, backend) as split, _load(tiny_bundle, backend, text_feature_cache_bytes=0) as whole:
        assert isinstance(split.runner, SplitRunner) and not isinstance(whole.runner, SplitRunner)
        first = split.predict_batch(texts, FRAMES)
        again = split.predict_batch(texts[::-1], FRAMES[::-1])[::-1]  # every row from the cache now
        reference = whole.predict_batch(texts, FRAMES)
    for got in (first, again):
        np.testing.assert_allclose([r.score for r in got], [r.score for r in reference], atol=1e-4)
        for a, b in zip(got, reference):
            np.testing.assert_allclose([d.confidence for d in a.detections], [d.confidence for d in b.detections],
                                       atol=1e-4)


def test_a_camera_loop_with_one_query_encodes_the_text_once(tiny_bundle):
    with _load(tiny_bundle) as pred:
        for frame in FRAMES:
            pred.predict("a red star", frame)
        assert pred.runner.text_calls == 1
        assert pred.runner.cache.info().hits == len(FRAMES) - 1


def test_predict_stream_with_one_text_encodes_it_once(tiny_bundle):
    with _load(tiny_bundle) as pred:
        items = list(pred.predict_stream((("a red star", f) for f in FRAMES * 3), batch_size=4))
        assert all(item.error is None for item in items) and pred.runner.text_calls == 1


def test_a_batch_encodes_each_new_text_once_in_one_call(tiny_bundle):
    with _load(tiny_bundle) as pred:
        pred.predict_batch(["a red star", "a circle", "a red star", "a circle"], FRAMES)
        assert pred.runner.text_calls == 1 and pred.runner.cache.info().entries == 2


def test_the_cache_evicts_the_least_recently_used_past_its_byte_bound():
    cache = FeatureCache(max_bytes=3 * (4 * 8 * 32 + 300))
    for i in range(4):
        cache.put(bytes([i]), np.zeros((8, 32), np.float32))
    cache.get(bytes([1]))
    cache.put(b"new", np.zeros((8, 32), np.float32))
    assert cache.get(bytes([0])) is None and cache.get(bytes([2])) is None and cache.get(bytes([1])) is not None
    assert cache.info().bytes <= cache._lru.max_bytes


def test_cached_features_cannot_be_changed_by_a_caller():
    cache = FeatureCache()
    cache.put(b"k", np.ones((2, 4), np.float32))
    with pytest.raises(ValueError):
        cache.get(b"k")[0, 0] = 5.0


def test_rows_are_keyed_by_their_real_tokens_only():
    ids = np.array([[101, 7, 102, 0, 0, 0, 0, 0]], np.int64)
    mask = (ids > 0).astype(np.int64)
    wide_ids, wide_mask = np.pad(ids, ((0, 0), (0, 8))), np.pad(mask, ((0, 0), (0, 8)))
    assert row_keys(ids, mask)[0] == row_keys(wide_ids, wide_mask)[0]
    assert list(row_keys(ids, mask)[1]) == [3]


def test_a_bundle_without_parts_runs_its_whole_graph(schema2_bundle):
    with _load(schema2_bundle) as pred:
        assert not isinstance(pred.runner, SplitRunner) and 0 <= pred.predict("a red star", FRAMES[0]).score <= 10


def test_parts_without_the_text_features_spec_are_refused(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["text_features"] = None
    with pytest.raises(BundleError, match="parts"):
        manifest_from_dict(manifest)


def test_a_part_missing_from_files_is_refused(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["artifacts"][0]["parts"]["text"] = "other.text.onnx"
    with pytest.raises(BundleError, match="other.text.onnx"):
        manifest_from_dict(manifest)


def test_a_part_outside_the_bundle_is_refused(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["artifacts"][0]["parts"]["fusion"] = "../fusion.onnx"
    with pytest.raises(BundleError, match="parts.fusion"):
        manifest_from_dict(manifest)


def test_the_onnxruntime_text_part_sleeps_between_runs_and_the_fusion_part_spins(tiny_bundle):
    with _load(tiny_bundle) as pred:
        text, fusion = (part.session.get_session_options() for part in (pred.runner.text, pred.runner.fusion))
        assert text.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        with pytest.raises(Exception, match="does not have configuration"):  # ONNX Runtime's default: spin
            fusion.get_session_config_entry("session.intra_op.allow_spinning")


def test_the_first_prediction_compiles_both_openvino_parts_once(tiny_bundle):
    with _load(tiny_bundle, "openvino") as pred:
        pred.predict("a red star", FRAMES[0])
        pred.predict("another text", FRAMES[1])
        assert [variant for variant, *_ in pred.runner.compile_log] == ["text/batch1-text_length8",
                                                                          "fusion/batch1-text_length8"]
