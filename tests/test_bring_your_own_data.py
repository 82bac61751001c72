"""Bring your own data, end to end: COCO import -> train --classes-from-data -> export -> predict."""

import json

from edge_clipguard.cli import main

NAMES = ("disc", "block", "wedge", "asterisk", "plus", "hoop")  # not the tiny config's class names


def test_import_train_export_predict_names_the_imported_classes(scenes_as_coco, scenes_dir, tmp_path, capsys):
    data, rows = scenes_as_coco("train", NAMES)
    (tmp_path / "instances.json").write_text(json.dumps(data))
    assert main(["data", "import", "coco", str(tmp_path / "instances.json"), "--images", str(scenes_dir),
                 "--out", str(tmp_path / "mine")]) == 0
    manifest, run, bundle = tmp_path / "mine" / "instances.jsonl", tmp_path / "run", tmp_path / "bundle"
    assert main(["train", "--config", "tiny", "--data", str(manifest), "--out", str(run), "--classes-from-data",
                 "--max-steps", "4", "--batch-size", "4", "--warmup", "1", "--device", "cpu", "--no-progress"]) == 0
    assert main(["export", str(run / "last.pt"), "--out", str(bundle), "--engine", "never"]) == 0
    assert json.loads((bundle / "manifest.json").read_text())["class_names"] == list(NAMES)
    capsys.readouterr()
    assert main(["predict", str(bundle), "--text", "a photo of hoop", "--image", rows[0].image, "--json",
                 "--min-confidence", "0", "--device", "cpu"]) == 0
    detections = json.loads(capsys.readouterr().out)["detections"]
    assert detections and {d["class_name"] for d in detections} <= set(NAMES)
