"""`train --classes-from-data`: the class list comes from classes.json next to the first --data manifest."""

import json

import pytest

from edge_clipguard.data.imported import classes_for_manifests
from edge_clipguard.errors import DataError


def _manifest(folder, classes=None):
    folder.mkdir(parents=True, exist_ok=True)
    if classes is not None:
        (folder / "classes.json").write_text(json.dumps(classes))
    path = folder / "train.jsonl"
    path.write_text("")
    return path


def test_class_list_comes_from_the_first_manifest_and_others_without_one_are_accepted(tmp_path):
    first = _manifest(tmp_path / "a", ["cat", "dog"])
    assert classes_for_manifests([first, _manifest(tmp_path / "b"), _manifest(tmp_path / "c", ["cat", "dog"])]) == (
        "cat", "dog")


def test_missing_class_list_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"a/classes\.json: not found; --classes-from-data reads"):
        classes_for_manifests([_manifest(tmp_path / "a")])


def test_manifests_with_different_class_lists_are_refused(tmp_path):
    first, other = _manifest(tmp_path / "a", ["cat", "dog"]), _manifest(tmp_path / "b", ["dog", "cat"])
    with pytest.raises(DataError, match=r"b/classes\.json: lists other classes than .*a/classes\.json"):
        classes_for_manifests([first, other])


def test_train_without_a_class_list_is_one_line_and_exit_2(tmp_path, capsys):
    from edge_clipguard.cli import main

    path = _manifest(tmp_path / "a")
    assert main(["train", "--config", "tiny", "--data", str(path), "--out", str(tmp_path / "run"),
                 "--classes-from-data", "--device", "cpu"]) == 2
    assert "classes.json: not found" in capsys.readouterr().err
