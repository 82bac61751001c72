"""`data import odvg`: grounding JSONL (caption + regions with phrases, or the detection form) -> manifest."""

import json

import pytest

from edge_clipguard.cli import main
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.data.odvg_import import import_odvg, odvg_rows
from edge_clipguard.errors import DataError


def _lines(*records):
    return [(f"g.jsonl:{n}", r) for n, r in enumerate(records, start=1)]


def _grounding(filename, caption, regions):
    return {"filename": filename, "height": 64, "width": 64,
            "grounding": {"caption": caption, "regions": [{"bbox": b, "phrase": p} for b, p in regions]}}


def _detection(filename, instances):
    return {"filename": filename, "height": 64, "width": 64,
            "detection": {"instances": [{"bbox": b, "label": lab, "category": c} for b, lab, c in instances]}}


def test_grounding_line_becomes_one_row_with_its_caption_and_phrase_labels():
    line = _grounding("a.jpg", "A man walks a  dog.", [([1, 2, 30, 40], "A man"), ([5, 5, 9, 9], "dog")])
    result = odvg_rows(_lines(line), "imgs")
    assert result.classes == ("a man", "dog")
    [row] = result.samples
    assert (row.text, row.labels, row.score, row.id) == ("A man walks a dog.", (0, 1), None, "odvg:1")
    assert row.boxes == ((1.0, 2.0, 30.0, 40.0), (5.0, 5.0, 9.0, 9.0)) and row.image.endswith("imgs/a.jpg")


def test_detection_line_becomes_one_row_per_category_with_the_template():
    line = _detection("b.jpg", [([0, 0, 4, 4], 7, "Cat"), ([1, 1, 5, 5], 2, "dog"), ([2, 2, 6, 6], 7, "cat")])
    result = odvg_rows(_lines(line), "imgs", template="the {class}")
    assert result.classes == ("cat", "dog")
    assert [(s.text, s.labels) for s in result.samples] == [("the cat", (0, 0)), ("the dog", (1,))]


def test_class_list_is_the_normalised_names_of_both_forms_sorted():
    lines = _lines(_detection("b.jpg", [([0, 0, 4, 4], 0, "Zebra ")]),
                   _grounding("a.jpg", "a red car", [([0, 0, 4, 4], "Red  Car")]))
    assert odvg_rows(lines, "imgs").classes == ("red car", "zebra")


def test_empty_regions_and_lines_left_without_a_box_are_skipped_and_counted():
    lines = _lines(_grounding("a.jpg", "a dog", [([5, 5, 5, 9], "dog"), ([0, 0, 4, 4], "dog")]),
                   _grounding("b.jpg", "a cat", [([5, 5, 9, 2], "cat")]))
    result = odvg_rows(lines, "imgs")
    assert result.skipped == {"regions with x2 <= x1 or y2 <= y1": 2, "lines without a box": 1}
    assert result.classes == ("dog",) and len(result.samples) == 1


def test_import_odvg_writes_manifest_and_classes_for_real_images(scenes_dir, tmp_path):
    rows = read_manifest(scenes_dir / "test.jsonl")[:2]
    path = tmp_path / "grounding.jsonl"
    path.write_text("\n".join(json.dumps(_grounding(str(r.image).removeprefix(f"{scenes_dir}/"), "a shape",
                                                    [(list(r.boxes[0]), "shape")])) for r in rows) + "\n")
    result, manifest, classes_file = import_odvg(path, tmp_path / "out", images_dir=scenes_dir)
    assert [s.image for s in read_manifest(manifest)] == [r.image for r in rows]
    assert json.loads(classes_file.read_text()) == ["shape"] and result.images == 2


def test_bad_line_is_one_line_naming_file_line_and_field_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(_grounding("a.jpg", "x", [([0, 0, 4, 4], "x")])) + "\n"
                    + json.dumps(_grounding("a.jpg", "x", [([0, 0, 4], "x")])) + "\n")
    assert main(["data", "import", "odvg", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "g.jsonl:2: grounding.regions[0].bbox must be [x1, y1, x2, y2] numbers" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_line_in_neither_form_is_refused():
    with pytest.raises(DataError, match=r"g\.jsonl:1: expected exactly one of 'grounding' or 'detection'"):
        odvg_rows(_lines({"filename": "a.jpg"}), "imgs")
