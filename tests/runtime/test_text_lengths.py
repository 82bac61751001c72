"""Short texts run short: a batch is padded to the smallest of the manifest's text lengths that holds it, and
padding never changes a result."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edge_clipguard.bundle import BundleError, manifest_from_dict
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.text_stage import TokenBatch, padded_length, stack_tokens

IMAGE = np.random.default_rng(11).integers(0, 256, (50, 70, 3), dtype=np.uint8)
LONG = "About the stars: " + "really " * 30 + "good."


def test_the_tiny_bundle_pads_to_8_or_16_tokens(tiny_bundle):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["schema_version"] == 3 and manifest["preprocess"]["text_lengths"] == [8, 16]
    assert manifest["inputs"][0]["shape"] == ["batch", "text_length"]


def test_a_short_text_is_padded_to_the_smallest_length_that_holds_it(predictor):
    short = predictor.tokenize(["a red star"])
    assert short.input_ids.shape == (1, 8) and short.attention_mask.sum() == 5
    assert predictor.tokenize([LONG]).input_ids.shape == (1, 16)
    assert predictor.tokenize(["a red star", LONG]).input_ids.shape == (2, 16)


def test_padded_length_takes_the_smallest_bucket_that_fits():
    assert [padded_length(n, (8, 16, 32, 64)) for n in (1, 8, 9, 33, 64)] == [8, 8, 16, 64, 64]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_padding_never_changes_a_result(tiny_bundle, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    with Predictor.load(tiny_bundle, backend=backend, device="cpu", threads=1, compile_cache=False) as pred:
        alone = pred.predict("a red star", IMAGE)  # 8 tokens
        together = pred.predict_batch(["a red star", LONG], [IMAGE, IMAGE])[0]  # padded to 16
    assert together.score == pytest.approx(alone.score, abs=1e-5)
    assert [d.label for d in together.detections] == [d.label for d in alone.detections]
    np.testing.assert_allclose([d.box for d in together.detections], [d.box for d in alone.detections], atol=1e-3)


def test_stacked_rows_keep_their_meaning(predictor):
    parts = [predictor.tokenize(["a red star"]), predictor.tokenize([LONG])]
    stacked = stack_tokens(parts)
    assert stacked.input_ids.shape == (2, 16) and stacked.truncated == (False, True)
    assert stacked.attention_mask[0].sum() == parts[0].attention_mask.sum()
    assert (stacked.input_ids[0, :8] == parts[0].input_ids[0]).all() and not stacked.attention_mask[0, 8:].any()
    assert isinstance(stacked, TokenBatch)


def test_a_schema_1_bundle_still_loads_at_its_fixed_length(tiny_bundle, tmp_path):
    old = tmp_path / "v1"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["schema_version"] = 1
    del manifest["preprocess"]["text_lengths"]
    for spec in manifest["inputs"][:2]:
        spec["shape"] = ["batch", manifest["preprocess"]["max_text_length"]]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with Predictor.load(old, backend="onnxruntime", device="cpu", threads=1) as pred:
        assert pred.tokenize(["a red star"]).input_ids.shape == (1, 16)
        v1 = pred.predict("a red star", IMAGE).score
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1) as pred:
        assert pred.predict("a red star", IMAGE).score == pytest.approx(v1, abs=1e-5)


@pytest.mark.parametrize("lengths", [[8, 32], [16, 8], [0, 16], [], "16", [8, 8, 16], [8.0, 16]])
def test_bad_text_lengths_are_refused_naming_the_field(tiny_bundle, lengths):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest["preprocess"]["text_lengths"] = lengths
    with pytest.raises(BundleError, match=r"'preprocess.text_lengths' .* ending with max_text_length 16"):
        manifest_from_dict(manifest)
