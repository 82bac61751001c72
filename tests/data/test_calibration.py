import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.data.calibration import (
    CALIB_SPEC,
    calibration_manifest,
    calibration_sample,
    committed_calibration_dir,
    load_calibration_samples,
    make_calibration_set,
)
from edge_clipguard.data.vader import load_vader
from edge_clipguard.errors import DataError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "calibration_data"
META = json.loads((COMMITTED / "calib.meta.json").read_text())
GOOD = {"image": "a.png", "text": "about the star: lovely", "score": 7.5, "boxes": [[1, 2, 30, 40]], "labels": [3]}


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def committed(vader_dir):
    return load_calibration_samples(None, num_classes=6, vader_dir=vader_dir)


def test_committed_set_is_found_from_the_package():
    assert committed_calibration_dir() == COMMITTED


def test_committed_set_reads_back_with_the_recorded_count(committed):
    assert len(committed) == META["count"] == 128


def test_committed_val_part_reads_back_with_the_recorded_count(vader_dir):
    assert len(load_calibration_samples(None, 6, name="val.jsonl", vader_dir=vader_dir)) == META["val_count"] == 32


def test_committed_images_exist_within_the_spec_sizes_and_hold_their_boxes(committed):
    for sample in committed:
        with Image.open(sample.image) as image:
            assert image.format == "PNG"
            w, h = image.size
        assert CALIB_SPEC.min_side <= min(w, h) and max(w, h) <= CALIB_SPEC.max_side <= 320
        assert all(0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h for x1, y1, x2, y2 in sample.boxes)


def test_committed_manifests_hold_no_third_party_text():
    for name in ("calib.jsonl", "val.jsonl"):
        rows = [json.loads(line) for line in (COMMITTED / name).read_text().splitlines()]
        assert all("text" not in r and "score" not in r and r["text_ref"]["source"] == "vader" for r in rows)


def test_committed_sentences_come_from_the_vader_train_split(committed, vader_dir):
    train_ids = {r.id for r in load_vader(vader_dir, split="train")}
    assert all(s.text_ref.id in train_ids for s in committed)


def test_regenerating_the_first_rows_gives_identical_rows_and_the_same_pixels(committed, vader_dir, tmp_path):
    sentences = load_vader(vader_dir, split="train")
    for index, sample in enumerate(committed[:3]):
        fresh = calibration_sample(index, "train", META["seed"], sentences, tmp_path / f"{index}.png")
        assert fresh.to_json() | {"image": None} == sample.to_json() | {"image": None}
        with Image.open(fresh.image) as a, Image.open(sample.image) as b:
            diff = np.abs(np.asarray(a.convert("RGB"), np.int16) - np.asarray(b.convert("RGB"), np.int16))
        # Bit-identical under the numpy the set was made with (2.x); numpy 1.26 (which the [serve] extra's
        # PyTriton pins) rounds a few procedural-background values differently: 3 grey levels on 0.001 %.
        assert diff.max() <= 4 and (diff > 0).any(axis=-1).mean() < 1e-3


def test_generator_writes_manifests_pngs_and_meta(tmp_path, vader_dir):
    path = make_calibration_set(tmp_path, count=3, seed=1, vader_dir=vader_dir, val_count=2)
    rows = load_calibration_samples(tmp_path, 6, vader_dir=vader_dir)
    assert path == tmp_path / "calib.jsonl" and len(rows) == 3
    assert len(load_calibration_samples(tmp_path, 6, name="val.jsonl", vader_dir=vader_dir)) == 2
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "calib_000000.png", "calib_000001.png", "calib_000002.png", "val_000000.png", "val_000001.png"]
    assert json.loads((tmp_path / "calib.meta.json").read_text())["seed"] == 1


def test_zero_count_is_refused(tmp_path, vader_dir):
    with pytest.raises(DataError, match="--count must be >= 1"):
        make_calibration_set(tmp_path, count=0, vader_dir=vader_dir)
    assert not (tmp_path / "calib.jsonl").exists()


def test_empty_manifest_is_a_data_error(tmp_path):
    (tmp_path / "calib.jsonl").write_text("")
    with pytest.raises(DataError, match=r"calib\.jsonl: manifest has no samples"):
        load_calibration_samples(tmp_path, 6)


def test_malformed_row_names_file_and_line(tmp_path):
    path = _write(tmp_path / "mine.jsonl", [GOOD, {**GOOD, "boxes": "oops"}])
    with pytest.raises(DataError, match=r"mine\.jsonl:2: fields 'boxes' and 'labels' must be lists"):
        load_calibration_samples(path, 6)


def test_text_only_row_is_refused(tmp_path):
    path = _write(tmp_path / "mine.jsonl", [{**GOOD, "image": None, "boxes": [], "labels": []}])
    with pytest.raises(DataError, match=r"mine\.jsonl: sample 1 has no image; every calibration row needs one"):
        load_calibration_samples(path, 6)


def test_missing_image_file_is_named(tmp_path):
    path = _write(tmp_path / "mine.jsonl", [GOOD])
    with pytest.raises(DataError, match=r"mine\.jsonl: sample 1: image .*a\.png not found"):
        load_calibration_samples(path, 6)


def test_directory_without_a_manifest_says_what_it_expected(tmp_path):
    with pytest.raises(DataError, match=r"no calibration manifest \(expected calib\.jsonl or a single \*\.jsonl\)"):
        load_calibration_samples(tmp_path, 6)


def test_directory_with_one_other_manifest_uses_it(tmp_path):
    _write(tmp_path / "mine.jsonl", [GOOD])
    assert calibration_manifest(tmp_path) == tmp_path / "mine.jsonl"


def test_directory_with_several_manifests_and_no_calib_jsonl_is_ambiguous(tmp_path):
    _write(tmp_path / "a.jsonl", [GOOD])
    _write(tmp_path / "b.jsonl", [GOOD])
    with pytest.raises(DataError, match=r"2 manifests and no calib\.jsonl; pass one of them: a\.jsonl, b\.jsonl"):
        calibration_manifest(tmp_path)


def test_no_committed_set_above_a_foreign_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no committed calibration_data/calib.jsonl found"):
        committed_calibration_dir(start=tmp_path / "pkg" / "calibration.py")
