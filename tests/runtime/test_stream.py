"""Predictor.predict_stream: batched and pipelined, in order, bounded, and a bad item does not stop it."""

from __future__ import annotations

import numpy as np
import pytest

from edge_clipguard.errors import ClipGuardError

TEXTS = ["About the stars: lovely.", "The red circle is broken!", "About the crosses: meh."]


def _pairs(images, n):
    return [(TEXTS[i % 3], np.asarray(images[i % 3])) for i in range(n)]


def test_stream_matches_one_by_one_predictions_in_order(predictor, images):
    pairs = _pairs(images, 11)
    streamed = list(predictor.predict_stream(pairs, batch_size=4, workers=2))
    assert [item.index for item in streamed] == list(range(11))
    for item, (text, image) in zip(streamed, pairs):
        want = predictor.predict(text, image)
        assert item.ok and item.result.score == pytest.approx(want.score, abs=1e-4)
        got = item.result.detections
        assert [d.label for d in got] == [d.label for d in want.detections]
        np.testing.assert_allclose([d.box for d in got], [d.box for d in want.detections], atol=1e-3)


def test_corrupt_item_becomes_an_error_item_and_the_stream_goes_on(predictor, images, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    pairs = _pairs(images, 5)
    pairs[2] = (TEXTS[0], bad)
    pairs[3] = ("   ", pairs[3][1])
    items = list(predictor.predict_stream(pairs, batch_size=2))
    assert [i.ok for i in items] == [True, True, False, False, True]
    assert items[2].error.startswith(f"{bad}: ") and "text #3" in items[3].error
    assert items[4].result == predictor.predict(*pairs[4])


def test_stream_reads_ahead_at_most_prefetch_batches(predictor, images):
    pulled = []

    def source():
        for i, pair in enumerate(_pairs(images, 40)):
            pulled.append(i)
            yield pair

    stream = predictor.predict_stream(source(), batch_size=2, workers=1, prefetch=2)
    first = next(stream)
    # The first batch, the two prefetched ones, and the one submitted while the first is inferred.
    assert first.index == 0 and len(pulled) <= 2 * (2 + 2)
    stream.close()


def test_stream_refuses_a_zero_batch_size(predictor, images):
    with pytest.raises(ClipGuardError, match="batch_size"):
        list(predictor.predict_stream(_pairs(images, 2), batch_size=0))
