"""Distillation terms (train/distill.py) and `train --teacher` end to end."""

import json

import torch

from edge_clipguard.cli import main


def test_distill_terms_appear_and_are_zero_when_student_matches_teacher(tiny_model, tiny_cfg):
    from edge_clipguard.model.clipguard import example_inputs
    from edge_clipguard.train.distill import DISTILL_TERMS, distill_terms

    with torch.no_grad():
        raw = tiny_model(*example_inputs(tiny_cfg, batch=3))
    same = distill_terms(raw, raw, torch.tensor([True, True, False]))
    assert set(same) == set(DISTILL_TERMS)
    assert all(abs(float(v)) < 1e-5 for v in same.values())
    moved = {**raw, "score": raw["score"] + 1.0, "heatmap": raw["heatmap"] + 2.0}
    other = distill_terms(moved, raw, torch.tensor([True, True, False]))
    assert float(other["distill_score"]) > 0.9 and float(other["distill_heatmap"]) > 0.01


def test_teacher_heatmap_is_resized_to_the_students_grid():
    from edge_clipguard.train.distill import resize_pixels, teacher_heatmap_on_grid

    logits = torch.full((2, 6, 40, 40), -8.0)
    logits[:, 3, 10:20, 10:20] = 8.0  # a confident block on class 3, a quarter of the way in
    prob = teacher_heatmap_on_grid(logits, 32)
    assert prob.shape == (2, 6, 32, 32) and 0.0 <= float(prob.min()) and float(prob.max()) <= 1.0
    assert float(prob[:, 3, 8:16, 8:16].min()) > 0.99 and float(prob[:, 3, 20:, 20:].max()) < 1e-3
    assert resize_pixels(torch.zeros(1, 3, 64, 64), 96).shape == (1, 3, 96, 96)


def test_train_with_a_teacher_runs_and_logs_the_distill_terms(scenes_dir, tiny_checkpoint, tmp_path, capsys):
    code = main(["train", "--config", "tiny", "--teacher", str(tiny_checkpoint), "--data",
                 str(scenes_dir / "train.jsonl"), "--val-data", str(scenes_dir / "test.jsonl"), "--out",
                 str(tmp_path), "--batch-size", "4", "--max-steps", "2", "--warmup", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all({"distill_score", "distill_heatmap"} <= set(r) for r in rows)
    assert (tmp_path / "last.pt").is_file()
