"""Paired-bootstrap intervals: zero for identical predictions, wide on few rows, tight and away from 0 on many."""

from __future__ import annotations

import numpy as np

from edge_clipguard.export.accuracy import Accuracy
from edge_clipguard.train.evaluate import Predictions
from edge_clipguard.train.intervals import map50_difference, score_r_difference


def _scenes(n: int, hit: float, seed: int) -> Predictions:
    """n images with one box each; a fraction ``hit`` of the predictions find it, the rest box elsewhere."""
    rng = np.random.default_rng(seed)
    truth, detections = [], []
    for i in range(n):
        box = np.array([[10.0, 10.0, 40.0, 40.0]])
        truth.append((box, np.array([i % 3]), True))
        found = rng.random() < hit
        guess = box if found else np.array([[60.0, 60.0, 90.0, 90.0]])
        detections.append((guess, np.array([0.9]), np.array([i % 3])))
    return Predictions(rng.random(n) * 10, detections, truth)


def test_identical_predictions_differ_by_exactly_nothing():
    a = _scenes(20, 0.7, seed=1)
    interval = map50_difference(a, a, num_classes=3)
    assert (interval.delta, interval.low, interval.high, interval.rows) == (0.0, 0.0, 0.0, 20)
    assert interval.resolves(0.01)


def test_few_scenes_cannot_resolve_one_point_and_the_summary_says_so():
    good, worse = _scenes(24, 0.9, seed=2), _scenes(24, 0.6, seed=3)
    interval = map50_difference(good, worse, num_classes=3)
    assert interval.low < interval.delta < interval.high and not interval.resolves(0.01)
    note = Accuracy(0.5, 0.5, 1.0, 0.0, interval).unresolved_note()
    assert note.startswith("24 validation scenes cannot resolve 1 point of mAP50")


def test_a_real_score_difference_on_many_rows_excludes_zero():
    rng = np.random.default_rng(4)
    truth = rng.random(400) * 10
    exact = Predictions(truth + rng.normal(0, 0.5, 400), [], [])
    noisy = Predictions(truth + rng.normal(0, 3.0, 400), [], [])
    interval = score_r_difference(exact, noisy, truth)
    assert 0 < interval.low <= interval.delta <= interval.high


def test_rows_without_a_true_score_are_left_out():
    truth = np.array([1.0, 2.0, np.nan, 4.0, 5.0, np.nan, 7.0])
    pred = Predictions(np.arange(7, dtype=float), [], [])
    assert score_r_difference(pred, pred, truth).rows == 5
