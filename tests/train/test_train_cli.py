"""The train command: its step limit said in its own words, and bad input as one line with exit 2."""

import json

from edge_clipguard.cli import main


def _train(scenes_dir, out, *extra):
    return main(["train", "--config", "tiny", "--data", str(scenes_dir / "train.jsonl"), "--val-data",
                 str(scenes_dir / "test.jsonl"), "--out", str(out), "--batch-size", "4", "--no-progress", *extra])


def test_train_max_steps_overrides_the_default_epoch_count(scenes_dir, tmp_path, capsys):
    """The issue: --max-steps 60 on a small set stopped at the default epochs' 20 steps."""
    assert _train(scenes_dir, tmp_path, "--max-steps", "5", "--warmup", "1") == 0
    assert "train: 5 steps: --max-steps (3 steps an epoch)" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]


def test_train_reports_a_malformed_manifest_line_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": null, "text": "fine", "score": 5, "boxes": [], "labels": []}\n{"image": null,\n')
    assert main(["train", "--config", "tiny", "--data", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"edge-clipguard: error: {bad}:2: invalid JSON") and "\n" not in err


def test_train_stops_with_one_line_after_n_non_finite_steps_in_a_row(scenes_dir, tmp_path, capsys):
    """An absurd learning rate blows the weights up after step 1; every later loss is non-finite."""
    assert _train(scenes_dir, tmp_path, "--max-steps", "9", "--warmup", "1", "--lr", "1e30",
                  "--max-skipped-in-row", "2") == 2
    err = capsys.readouterr().err.strip()
    assert "error: train: stopped at step 3: the last 2 optimiser steps all had a non-finite loss" in err
    assert "\n" not in err


def _legacy_checkpoint(tiny_checkpoint, path):
    """``tiny_checkpoint`` as saved before configs had ``resize`` (trained on Pillow's resize)."""
    import torch

    payload = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    del payload["model_config"]["resize"]
    torch.save(payload, path)
    return path


def test_a_checkpoint_saved_before_the_resize_field_restores_with_pillows_resize(tiny_checkpoint, tmp_path):
    from edge_clipguard.train.checkpoint import checkpoint_config, load_checkpoint

    legacy = _legacy_checkpoint(tiny_checkpoint, tmp_path / "old.pt")
    assert checkpoint_config(load_checkpoint(legacy)).resize == "pillow-bilinear"
    assert checkpoint_config(load_checkpoint(tiny_checkpoint)).resize == "opencv"


def test_train_resize_moves_an_init_from_checkpoint_to_the_other_method(scenes_dir, tiny_checkpoint, tmp_path):
    from edge_clipguard.train.checkpoint import checkpoint_config, load_checkpoint

    legacy = _legacy_checkpoint(tiny_checkpoint, tmp_path / "old.pt")
    assert _train(scenes_dir, tmp_path / "run", "--init-from", str(legacy), "--resize", "opencv", "--max-steps", "1",
                  "--warmup", "1") == 0
    assert checkpoint_config(load_checkpoint(tmp_path / "run" / "last.pt")).resize == "opencv"


def test_a_resumed_run_keeps_the_resize_it_began_with(scenes_dir, tmp_path):
    from edge_clipguard.train.checkpoint import checkpoint_config, load_checkpoint

    run = tmp_path / "run"
    assert _train(scenes_dir, run, "--resize", "pillow-bilinear", "--max-steps", "1", "--warmup", "1") == 0
    assert _train(scenes_dir, run, "--resume", "--max-steps", "2", "--warmup", "1") == 0
    last = load_checkpoint(run / "last.pt")
    assert last["step"] == 2 and checkpoint_config(last).resize == "pillow-bilinear"


def test_qat_text_activations_without_qat_is_one_line_exit_2(scenes_dir, tmp_path, capsys):
    assert _train(scenes_dir, tmp_path / "run", "--qat-text-activations") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--qat-text-activations is only used with --qat") and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_train_qat_attention_matmuls_writes_a_checkpoint_with_attention_quantizers(scenes_dir, tmp_path):
    from edge_clipguard.train.checkpoint import load_checkpoint
    from edge_clipguard.train.quantize import quantizes_attention_matmuls

    assert _train(scenes_dir, tmp_path / "run", "--qat", "--qat-attention-matmuls", "--calib-batches", "1",
                  "--max-steps", "1", "--warmup", "1") == 0
    assert quantizes_attention_matmuls(load_checkpoint(tmp_path / "run" / "last.pt")["modelopt_state"])


def test_qat_attention_matmuls_without_qat_is_one_line_exit_2(scenes_dir, tmp_path, capsys):
    assert _train(scenes_dir, tmp_path / "run", "--qat-attention-matmuls") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--qat-attention-matmuls is only used with --qat") and "\n" not in err
    assert not (tmp_path / "run").exists()
