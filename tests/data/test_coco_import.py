"""`data import coco`: COCO instances (+ captions) -> manifest rows without a score, and classes.json."""

import json

import pytest

from edge_clipguard.cli import main
from edge_clipguard.data.coco_import import coco_rows, import_coco
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.data.shapes import SHAPE_CLASSES
from edge_clipguard.errors import DataError


def _small(annotations, images=({"id": 1, "file_name": "a.jpg"},), categories=None):
    categories = categories or [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}]
    return {"images": list(images), "annotations": annotations, "categories": categories}


def _ann(image_id, category_id, bbox, **extra):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, **extra}


def test_imported_scenes_give_back_their_boxes_labels_and_class_list(scenes_as_coco, scenes_dir, tmp_path):
    data, rows = scenes_as_coco()
    (tmp_path / "instances.json").write_text(json.dumps(data))
    _, manifest, classes_file = import_coco(tmp_path / "instances.json", scenes_dir, tmp_path / "out")
    assert json.loads(classes_file.read_text()) == list(SHAPE_CLASSES)
    imported = read_manifest(manifest)
    assert [(s.image, s.labels, s.score) for s in imported] == [(r.image, r.labels, None) for r in rows]
    assert [s.boxes for s in imported] == [r.boxes for r in rows]  # written to 0.01 px: x + w is x2 again
    assert imported[0].text == f"a photo of {SHAPE_CLASSES[rows[0].labels[0]]}"


def test_coco_xywh_becomes_x1y1x2y2():
    result = coco_rows(_small([_ann(1, 1, [10, 20, 30, 40])]), "imgs", "i.json")
    assert result.samples[0].boxes == ((10.0, 20.0, 40.0, 60.0),)


def test_category_ids_map_to_contiguous_labels_in_id_order():
    result = coco_rows(_small([_ann(1, 3, [0, 0, 5, 5]), _ann(1, 1, [1, 1, 5, 5])]), "imgs", "i.json")
    assert result.classes == ("cat", "dog")
    assert sorted((s.text, s.labels) for s in result.samples) == [("a photo of cat", (0,)), ("a photo of dog", (1,))]


def test_crowd_and_empty_boxes_are_skipped_and_counted():
    anns = [_ann(1, 1, [0, 0, 5, 5], iscrowd=1), _ann(1, 1, [0, 0, 0, 5]), _ann(1, 1, [0, 0, 5, -1]),
            _ann(1, 1, [2, 2, 5, 5], iscrowd=0)]
    result = coco_rows(_small(anns), "imgs", "i.json")
    assert result.skipped == {"crowd boxes": 1, "boxes with w or h <= 0": 2}
    assert [s.boxes for s in result.samples] == [((2.0, 2.0, 7.0, 7.0),)]


def test_template_gives_one_row_per_image_and_class_present_with_that_class_boxes_only():
    anns = [_ann(1, 3, [0, 0, 5, 5]), _ann(1, 1, [10, 10, 5, 5]), _ann(1, 3, [20, 20, 5, 5])]
    result = coco_rows(_small(anns), "imgs", "i.json", template="where is the {class}?")
    assert [(s.text, s.labels, len(s.boxes)) for s in result.samples] == [("where is the cat?", (0,), 1),
                                                                           ("where is the dog?", (1, 1), 2)]
    assert all(s.score is None and s.image.endswith("imgs/a.jpg") for s in result.samples)


def test_images_without_annotations_are_skipped_and_counted():
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}]
    result = coco_rows(_small([_ann(2, 1, [0, 0, 5, 5]), _ann(3, 1, [0, 0, 5, 5], iscrowd=1)], images), "d", "i.json")
    assert result.images == 1 and result.skipped["images without annotations"] == 2


def test_captions_keep_the_boxes_of_the_classes_they_name_else_all():
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}]
    anns = [_ann(i, c, [0, 0, 5, 5]) for i in (1, 2, 3) for c in (1, 3)]
    captions = {1: "Two Dogs on a sofa", 2: "A quiet afternoon"}
    result = coco_rows(_small(anns, images), "d", "i.json", captions=captions)
    assert [(s.text, s.labels) for s in result.samples] == [("Two Dogs on a sofa", (1,)), ("A quiet afternoon", (0, 1))]
    assert result.skipped == {"captions naming no class (all their boxes kept)": 1, "images without a caption": 1}


def test_captions_file_gives_each_image_its_first_caption(scenes_as_coco, tmp_path, scenes_dir):
    data, rows = scenes_as_coco("test")
    captions = {"annotations": [{"image_id": im["id"], "caption": f"look at the {name}s"} for im in data["images"]
                                for name in ("ring", "star")]}
    (tmp_path / "instances.json").write_text(json.dumps(data))
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    result, manifest, _ = import_coco(tmp_path / "instances.json", scenes_dir, tmp_path, tmp_path / "captions.json")
    assert {s.text for s in read_manifest(manifest)} == {"look at the rings"} and result.images == len(rows)


def test_import_command_prints_rows_classes_and_skips(scenes_as_coco, scenes_dir, tmp_path, capsys):
    data, rows = scenes_as_coco("test")
    data["annotations"].append({**data["annotations"][0], "id": 999, "iscrowd": 1})
    (tmp_path / "instances.json").write_text(json.dumps(data))
    out = tmp_path / "mine"
    assert main(["data", "import", "coco", str(tmp_path / "instances.json"), "--images", str(scenes_dir),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"coco: {len(rows)} images -> {len(rows)} rows" in printed and "6 classes" in printed
    assert "skipped:  1 crowd boxes" in printed
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "instances.jsonl"]


def test_bad_bbox_is_one_line_naming_file_and_field_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "i.json").write_text(json.dumps(_small([_ann(1, 1, [0, 0, 5])])))
    assert main(["data", "import", "coco", str(tmp_path / "i.json"), "--images", str(tmp_path),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "i.json: annotations[0].bbox must be [x, y, w, h] numbers" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_missing_image_files_are_an_error_before_anything_is_written(tmp_path):
    (tmp_path / "i.json").write_text(json.dumps(_small([_ann(1, 1, [0, 0, 5, 5])])))
    with pytest.raises(DataError, match=r"i\.json: 1 image file\(s\) not found, e\.g\. .*a\.jpg"):
        import_coco(tmp_path / "i.json", tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_text_template_without_class_is_refused():
    with pytest.raises(DataError, match=r"--text-template 'a photo': must contain \{class\}"):
        coco_rows(_small([_ann(1, 1, [0, 0, 5, 5])]), "d", "i.json", template="a photo")
