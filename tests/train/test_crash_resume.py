"""Crash-safe training: SIGKILL at random moments and inside checkpoint writes, then --resume.

The fast version of ``benchmarks/bench_crash_resume.py`` (which runs 24+ kills): two kills, one
inside a checkpoint write, on the tiny config.
"""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from edge_clipguard.train.run_dir import remove_stale_temp_files, trim_log

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_crash_resume.py"


@pytest.fixture(scope="module")
def crash_result(scenes_dir, tmp_path_factory):
    spec = importlib.util.spec_from_file_location("bench_crash_resume", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    work = tmp_path_factory.mktemp("crash")
    return bench.main(["--trials", "2", "--steps", "6", "--data", str(scenes_dir / "train.jsonl"),
                       "--val-data", str(scenes_dir / "test.jsonl"), "--work", str(work / "w"),
                       "--json", str(work / "result.json")])["summary"]


def test_sigkilled_train_always_leaves_a_loadable_last_pt(crash_result):
    assert crash_result["killed"] >= 1
    assert crash_result["last_pt_loadable"] == crash_result["killed_with_last_pt"]


def test_resume_after_sigkill_repeats_the_uninterrupted_losses(crash_result):
    assert crash_result["chains_completed"] >= 1 and crash_result["all_same_steps"]
    assert crash_result["loss_max_abs_diff"] <= 1e-5 and crash_result["weight_max_abs_diff"] <= 1e-5


def _steps(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "steps.jsonl").read_text().splitlines()]


def test_resume_cuts_the_log_back_to_the_checkpoint(make_trainer, tmp_path):
    """A killed run logged steps past its checkpoint and a torn line; the resumed log has each step once."""
    make_trainer(tmp_path / "run", epochs=2).fit(stop_at=3)
    with (tmp_path / "run" / "steps.jsonl").open("a") as log:
        log.write(json.dumps({"step": 4, "loss": 1.0}) + "\n" + '{"step": 5, "lo')
    make_trainer(tmp_path / "run", epochs=2).fit(resume=True)
    assert _steps(tmp_path / "run") == [1, 2, 3, 4, 5, 6]


def test_trim_log_keeps_complete_rows_up_to_the_step(tmp_path):
    log = tmp_path / "steps.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"st')
    assert trim_log(log, 2) == 2 and log.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_stale_checkpoint_temp_files_are_removed(tmp_path):
    (tmp_path / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "notes.txt").write_text("mine")
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [".last.pt.x1y2.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_non_finite_steps_in_a_row_stop_the_run_with_a_clear_message(make_trainer):
    from edge_clipguard.train.trainer import TrainingDiverged

    trainer = make_trainer(epochs=3, max_skipped_in_row=3)
    with torch.no_grad():
        trainer.model.score_head.mlp[-1].bias.fill_(float("nan"))  # every loss is NaN from here on
    with pytest.raises(TrainingDiverged, match=r"stopped at step 3: the last 3 optimiser steps all had a non-finite"):
        trainer.fit()
    rows = [json.loads(line) for line in (trainer.out / "steps.jsonl").read_text().splitlines()]
    assert [(r["skipped"], r["skipped_total"]) for r in rows] == [(True, 1), (True, 2), (True, 3)]


def test_a_finite_step_resets_the_non_finite_streak(make_trainer):
    trainer = make_trainer(epochs=1)
    batch = next(iter(trainer.loader(0)))
    bad = {**batch, "pixel_values": batch["pixel_values"].clone()}
    bad["pixel_values"][0, 0, 0, 0] = float("nan")
    trainer.train_step([bad])
    assert trainer.skipped_in_row == 1
    trainer.train_step([batch])
    assert trainer.skipped_in_row == 0 and trainer.skipped == 1
