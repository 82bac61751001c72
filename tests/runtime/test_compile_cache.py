"""OpenVINO's compiled-model cache: a second start imports instead of compiling; bad entries are rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.compile_cache import DISABLE_ENV, CompileCache

pytest.importorskip("openvino")

IMAGES = [np.random.default_rng(i).integers(0, 256, (40 + 8 * i, 64, 3), dtype=np.uint8) for i in range(2)]
TEXTS = ["a red star", "About the circles: fine."]
B1 = "batch1-text_length8"  # the variant a one-image batch of a short text compiles
WHOLE = {"text_feature_cache_bytes": 0}  # these tests follow one compiled graph: the whole one, not its two parts


def _run(bundle, cache, batch: int = 1):
    """(scores, compile log) of a fresh OpenVINO Predictor using ``cache`` for ``batch`` images."""
    with Predictor.load(bundle, backend="openvino", device="cpu", threads=1, compile_cache=cache, **WHOLE) as pred:
        scores = [r.score for r in pred.predict_batch(TEXTS[:batch], IMAGES[:batch])]
        return scores, list(pred.runner.compile_log)


def _sources(log) -> list[tuple[str, str]]:
    return [(variant, source) for variant, source, _ in log]


def test_a_second_start_imports_the_compiled_model_from_the_cache(tiny_bundle, tmp_path):
    first, first_log = _run(tiny_bundle, tmp_path)
    second, second_log = _run(tiny_bundle, tmp_path)
    assert _sources(first_log) == [(B1, "compiled")] and _sources(second_log) == [(B1, "cache")]
    assert second == pytest.approx(first, abs=1e-6)
    assert len(list(tmp_path.glob("*.blob"))) == 1


def test_each_shape_is_compiled_when_first_used_not_at_load(tiny_bundle, tmp_path):
    with Predictor.load(tiny_bundle, backend="openvino", device="cpu", threads=1, compile_cache=tmp_path,
                        **WHOLE) as pred:
        assert pred.runner.compile_log == []
        pred.predict_batch(TEXTS, IMAGES)
        assert _sources(pred.runner.compile_log) == [("dynamic", "compiled")]


def test_a_corrupt_cache_entry_is_ignored_and_rebuilt(tiny_bundle, tmp_path):
    clean, _ = _run(tiny_bundle, tmp_path)
    [entry] = tmp_path.glob("*.blob")
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # OpenVINO itself imports such a blob without complaint
    entry.write_bytes(bytes(blob))
    scores, log = _run(tiny_bundle, tmp_path)
    assert _sources(log) == [(B1, "compiled")] and scores == pytest.approx(clean, abs=1e-6)
    [rebuilt] = tmp_path.glob("*.blob")
    assert rebuilt.read_bytes() != bytes(blob)


def test_a_truncated_cache_entry_is_ignored_and_rebuilt(tiny_bundle, tmp_path):
    _run(tiny_bundle, tmp_path)
    [entry] = tmp_path.glob("*.blob")
    entry.write_bytes(entry.read_bytes()[:1000])
    _, log = _run(tiny_bundle, tmp_path)
    assert _sources(log) == [(B1, "compiled")]


def test_an_entry_of_another_openvino_version_is_never_used(tiny_bundle, tmp_path, monkeypatch):
    import openvino

    real = openvino.get_version()
    monkeypatch.setattr(openvino, "get_version", lambda: real + "-older")
    _run(tiny_bundle, tmp_path)
    monkeypatch.setattr(openvino, "get_version", lambda: real)
    _, log = _run(tiny_bundle, tmp_path)
    assert _sources(log) == [(B1, "compiled")]


def test_another_thread_count_is_another_entry(tiny_bundle, tmp_path):
    _run(tiny_bundle, tmp_path)
    with Predictor.load(tiny_bundle, backend="openvino", device="cpu", threads=2, compile_cache=tmp_path,
                        **WHOLE) as pred:
        pred.predict(TEXTS[0], IMAGES[0])
        assert _sources(pred.runner.compile_log) == [(B1, "compiled")]
    assert len(list(tmp_path.glob("*.blob"))) == 2


def test_the_environment_turns_the_default_cache_off(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_CLIPGUARD_CACHE", str(tmp_path))
    assert CompileCache.from_setting(True) == CompileCache(tmp_path / "compiled")
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert CompileCache.from_setting(True) is None
    assert CompileCache.from_setting(tmp_path / "mine") == CompileCache(tmp_path / "mine")


def test_no_cache_compiles_every_start_and_writes_nothing(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_CLIPGUARD_CACHE", str(tmp_path))
    _, first = _run(tiny_bundle, False)
    _, second = _run(tiny_bundle, False)
    assert _sources(first) == _sources(second) == [(B1, "compiled")]
    assert not any(tmp_path.rglob("*.blob"))


def test_an_unwritable_cache_folder_does_not_fail_the_load(tiny_bundle, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    scores, log = _run(tiny_bundle, blocker / "cache")
    assert _sources(log) == [(B1, "compiled")] and 0.0 <= scores[0] <= 10.0


def test_both_parts_of_a_cut_artifact_are_cached(tiny_bundle, tmp_path):
    for expected in ("compiled", "cache"):
        with Predictor.load(tiny_bundle, backend="openvino", device="cpu", threads=1, compile_cache=tmp_path) as pred:
            pred.predict(TEXTS[0], IMAGES[0])
            assert _sources(pred.runner.compile_log) == [(f"text/{B1}", expected), (f"fusion/{B1}", expected)]
    assert len(list(tmp_path.glob("*.blob"))) == 2
