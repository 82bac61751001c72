"""`evaluate`: score metrics per VADER domain, pycocotools mAP, and the text-masked ablation."""

import json

import pytest


@pytest.fixture()
def mixed_manifest(tmp_path, scenes_dir, vader_dir):
    """6 test scenes + 2 text-only rows from each VADER domain, in one manifest."""
    from edge_clipguard.data.manifest import read_manifest, write_manifest
    from edge_clipguard.data.vader import DOMAINS, load_vader

    texts = load_vader(vader_dir, split="test")
    rows = read_manifest(scenes_dir / "test.jsonl")
    rows += [r for domain in DOMAINS for r in [t for t in texts if t.domain == domain][:2]]
    return write_manifest(tmp_path / "mixed.jsonl", rows), rows


def test_evaluate_command_writes_per_domain_scores_and_coco_map(tiny_checkpoint, mixed_manifest, tmp_path):
    from edge_clipguard.cli import main

    path, rows = mixed_manifest
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"tweets", "movies", "amazon", "nyt", "pooled"} <= set(result["score"])
    assert result["score"]["pooled"]["n"] == len(rows)
    assert result["score"]["tweets"]["n"] == sum(r.domain == "tweets" for r in rows) >= 2
    detection = result["detection"]
    assert detection["images"] == sum(r.image is not None for r in rows) == 6
    assert 0.0 <= detection["map50_95"] <= detection["map50"] <= 1.0
    low, high = result["ci95"]["map50"]
    assert 0.0 <= low <= high <= 1.0 and result["ci95"]["resamples"] == 100
    low, high = result["ci95"]["score_r"]
    assert -1.0 <= low <= high <= 1.0


def test_text_masked_ablation_runs_on_the_rows_with_images_only(tiny_checkpoint, tiny_tokenizer, mixed_manifest):
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model
    from edge_clipguard.train.evaluate import evaluate_samples

    model, _ = restore_model(load_checkpoint(tiny_checkpoint))
    _, rows = mixed_manifest
    masked = evaluate_samples(model, tiny_tokenizer, rows, batch_size=4)["text_masked"]
    assert masked["score"]["n"] == masked["detection"]["images"] == 6


def test_score_metrics_cover_only_the_rows_that_have_a_score():
    import numpy as np

    from edge_clipguard.data.manifest import Sample
    from edge_clipguard.train.evaluate import Predictions, score_predictions

    rows = [Sample(image=None, text="a", score=2.0, domain="tweets"), Sample(image="x.jpg", text="b", score=None),
            Sample(image=None, text="c", score=8.0, domain="tweets")]
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))
    pred = Predictions(np.array([2.0, 9.5, 8.0]), [empty] * 3,
                       [(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), s.image is not None) for s in rows])
    score = score_predictions(pred, rows, num_classes=2)["score"]
    assert score["pooled"]["n"] == score["tweets"]["n"] == 2 and score["pooled"]["mae"] == 0.0


def test_evaluate_on_a_bundle_runs_the_runtime_and_matches_the_checkpoint(tiny_checkpoint, tiny_bundle,
                                                                          mixed_manifest, tmp_path, capsys):
    """The bundle's fp32 artifact through the runtime scores as its checkpoint does through PyTorch (same rows)."""
    from edge_clipguard.cli import main

    path, _ = mixed_manifest
    out_ckpt, out_bundle = tmp_path / "ckpt.json", tmp_path / "bundle.json"
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(path), "--json", str(out_ckpt)]) == 0
    assert main(["evaluate", str(tiny_bundle), "--data", str(path), "--backend", "onnxruntime", "--json",
                 str(out_bundle)]) == 0
    checkpoint, bundle = json.loads(out_ckpt.read_text()), json.loads(out_bundle.read_text())
    assert "model.fp32.onnx (fp32, onnxruntime cpu" in bundle["artifact"]
    assert bundle["detection"]["images"] == checkpoint["detection"]["images"]
    assert abs(bundle["score"]["pooled"]["pearson"] - checkpoint["score"]["pooled"]["pearson"]) < 0.02
    assert set(bundle["ci95"]) >= {"map50", "score_r", "resamples"}
