import numpy as np
import pytest

from edge_clipguard.train.metrics import coco_map, per_domain_metrics, regression_metrics


def test_regression_metrics_of_a_perfect_fit():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert (m["pearson"], m["mae"], m["r2"]) == (pytest.approx(1.0), 0.0, 1.0)


def test_r2_is_zero_for_predicting_the_mean():
    true = np.array([1.0, 5.0, 9.0])
    assert regression_metrics(np.full(3, 5.0), true)["r2"] == pytest.approx(0.0)


def test_per_domain_splits_and_pools():
    out = per_domain_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 4.0, 3.0]), ["a", "a", "b", "b"])
    assert set(out) == {"a", "b", "pooled"}
    assert out["a"]["pearson"] == pytest.approx(1.0) and out["b"]["pearson"] == pytest.approx(-1.0)


def test_rows_whose_true_score_is_nan_count_nowhere():
    out = per_domain_metrics(np.array([1.0, 2.0, 9.0, 3.0]), np.array([1.0, 2.0, np.nan, 3.0]), ["a", "a", "a", None])
    assert out["a"]["n"] == 2 and out["pooled"]["n"] == 3
    assert out["pooled"]["mae"] == 0.0 and out["pooled"]["pearson"] == pytest.approx(1.0)


GT = [(np.array([[10, 10, 50, 50]]), np.array([1])), (np.array([[0, 0, 20, 30], [40, 40, 80, 90]]), np.array([2, 2]))]


def test_map_of_exact_detections_is_one():
    dets = [(b.astype(float), np.full(len(b), 0.9), lab) for b, lab in GT]
    assert coco_map(GT, dets, 3) == {"map50": pytest.approx(1.0), "map50_95": pytest.approx(1.0)}


def test_wrong_class_or_place_scores_zero():
    dets = [(np.array([[10, 10, 50, 50]]), np.array([0.9]), np.array([0])),
            (np.array([[100, 100, 120, 130]]), np.array([0.9]), np.array([2]))]
    assert coco_map(GT, dets, 3)["map50"] == pytest.approx(0.0)


def test_half_overlap_counts_at_50_not_at_95():
    dets = [(np.array([[10, 10, 50, 45]]), np.array([0.9]), np.array([1])),
            (np.array([[0, 0, 20, 30], [40, 40, 80, 90]]), np.array([0.9, 0.8]), np.array([2, 2]))]
    m = coco_map(GT, dets, 3)
    assert m["map50"] == pytest.approx(1.0) and m["map50_95"] < 0.95
