import json

import pytest

from edge_clipguard.data.manifest import Sample, read_manifest, write_manifest
from edge_clipguard.errors import DataError


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"image": "a.jpg", "text": "about the star: lovely", "score": 7.5, "boxes": [[1, 2, 30, 40]], "labels": [3]}


def test_round_trip_keeps_fields_and_relative_paths(tmp_path):
    sample = Sample(image=str(tmp_path / "img" / "a.jpg"), text="hi", score=2.5, boxes=((1.0, 2.0, 3.0, 4.0),),
                    labels=(1,), domain="tweets", id="x:1", split="val", text_id="tweets:9")
    path = write_manifest(tmp_path / "m.jsonl", [sample])
    assert json.loads(path.read_text())["image"] == "img/a.jpg"
    assert read_manifest(path) == [sample]


def test_bad_score_names_file_line_and_field(tmp_path):
    path = _write(tmp_path / "m.jsonl", [GOOD, {**GOOD, "score": 11}])
    with pytest.raises(DataError, match=r"m\.jsonl:2: field 'score' must be a number in \[0, 10\], got 11"):
        read_manifest(path)


def test_boxes_and_labels_must_pair_up(tmp_path):
    path = _write(tmp_path / "m.jsonl", [{**GOOD, "labels": []}])
    with pytest.raises(DataError, match="'boxes' and 'labels' must be lists of equal length"):
        read_manifest(path)


def test_degenerate_box_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [{**GOOD, "boxes": [[5, 5, 5, 9]]}])
    with pytest.raises(DataError, match=r"boxes\[0\] must have x2 > x1"):
        read_manifest(path)


def test_label_beyond_model_classes_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [GOOD])
    with pytest.raises(DataError, match="labels\\[0\\] = 3 but the model has 2 classes"):
        read_manifest(path, num_classes=2)


def test_invalid_json_line_is_named(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(DataError, match=r"m\.jsonl:2: invalid JSON"):
        read_manifest(path)


def test_missing_manifest_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
