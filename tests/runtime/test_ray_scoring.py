"""Offline scoring on Ray Data: a local Ray with 2 actors scores ~200 pairs like ``predict_stream`` does, a bad
image is an error row, and the documented Parquet recipe runs end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")

from edge_clipguard.runtime import Predictor  # noqa: E402
from edge_clipguard.runtime.ray_scoring import BundleScorer  # noqa: E402

TEXTS = ["a red star", "the small blue circle", "every square on the left", "is there a ring?"]


@pytest.fixture(scope="module")
def local_ray():
    # 4 logical CPUs on 2 cores: 2 scoring actors plus Ray Data's own read/split tasks never wait on each other.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _pixels(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (int(rng.integers(24, 72)), int(rng.integers(24, 72)), 3), dtype=np.uint8)
            for _ in range(count)]


def _scorer_kwargs(bundle) -> dict:
    return {"bundle": str(bundle), "backend": "onnxruntime", "min_confidence": 0.0}


def _stream(bundle, pairs):
    with Predictor.load(bundle, backend="onnxruntime", device="cpu", threads=1, min_confidence=0.0) as predictor:
        return list(predictor.predict_stream(pairs, batch_size=16))


def test_two_ray_actors_score_200_decoded_images_like_predict_stream(local_ray, tiny_bundle):
    images = _pixels(200)
    rows = [{"id": i, "text": TEXTS[i % len(TEXTS)], "image": image} for i, image in enumerate(images)]
    scored = (ray.data.from_items(rows)
              .map_batches(BundleScorer, fn_constructor_kwargs=_scorer_kwargs(tiny_bundle), concurrency=2,
                           batch_size=16)
              .to_arrow_refs())
    table = sorted((r for ref in scored for r in ray.get(ref).to_pylist()), key=lambda r: r["id"])
    expected = _stream(tiny_bundle, [(row["text"], row["image"]) for row in rows])
    assert [r["id"] for r in table] == list(range(200)) and all(r["error"] is None for r in table)
    for got, want in zip(table, expected):
        detections = want.result.detections
        assert got["score"] == pytest.approx(want.result.score, abs=1e-5)
        assert got["labels"] == [d.label for d in detections]
        assert got["class_names"] == [d.class_name for d in detections]
        assert np.allclose(got["boxes"], [d.box for d in detections], atol=1e-3)
        assert np.allclose(got["confidences"], [d.confidence for d in detections], atol=1e-5)
        assert (got["image_width"], got["image_height"]) == want.result.image_size


def test_a_bad_image_is_an_error_row_and_the_parquet_recipe_completes(local_ray, tiny_bundle, tmp_path):
    import pyarrow as pa
    from PIL import Image

    paths = []
    for i, pixels in enumerate(_pixels(12)):
        paths.append(str(tmp_path / f"img{i}.jpg"))
        Image.fromarray(pixels).save(paths[-1])
    Path(paths[5]).write_bytes(b"not a jpeg at all")
    pq.write_table(pa.table({"text": ["a red star"] * 12, "image": paths}), tmp_path / "pairs.parquet")

    ray.data.read_parquet(str(tmp_path / "pairs.parquet")).map_batches(
        BundleScorer, fn_constructor_kwargs=_scorer_kwargs(tiny_bundle), concurrency=2, batch_size=4,
    ).write_parquet(str(tmp_path / "scores"))

    rows = {r["image"]: r for r in pq.read_table(tmp_path / "scores").to_pylist()}  # paths are passed through
    assert sorted(rows) == sorted(paths)
    bad = [r for r in rows.values() if r["error"] is not None]
    assert [r["image"] for r in bad] == [paths[5]] and "img5.jpg" in bad[0]["error"] and np.isnan(bad[0]["score"])
    assert all(0.0 <= r["score"] <= 10.0 and r["image_width"] > 0 for r in rows.values() if r["error"] is None)
