import json
import math

import pytest
import torch

from edge_clipguard.errors import ClipGuardError
from edge_clipguard.train.checkpoint import CheckpointError, load_checkpoint, restore_model
from edge_clipguard.train.clipping import ClipConfig
from edge_clipguard.train.trainer import resolve_amp


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


def test_training_lowers_the_loss(make_trainer):
    trainer = make_trainer(epochs=10)
    trainer.fit()
    rows = [json.loads(line) for line in (trainer.out / "steps.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    first, last = sum(r["loss"] for r in rows[:3]) / 3, sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.75 * first


def test_step_log_has_per_group_norms_and_clip_flag(make_trainer):
    trainer = make_trainer(epochs=1, clip=ClipConfig(mode="norm", max_norm=1e-3))
    trainer.fit()
    row = json.loads((trainer.out / "steps.jsonl").read_text().splitlines()[0])
    assert {"grad_norm_text", "grad_norm_image", "grad_norm_fusion", "grad_norm_total", "grad_norm_post"} <= set(row)
    assert row["clipped"] is True and row["grad_norm_post"] == pytest.approx(1e-3, rel=1e-3)


def test_checkpoints_and_curves_are_written(make_trainer):
    trainer = make_trainer(epochs=2)
    trainer.fit()
    assert {"last.pt", "best.pt", "curves.png", "epochs.jsonl"} <= {p.name for p in trainer.out.iterdir()}
    assert not list(trainer.out.glob("*.tmp"))
    payload = load_checkpoint(trainer.out / "last.pt")
    assert payload["step"] == 6 and payload["epoch"] == 2 and "[CLS]" in payload["tokenizer_json"]


def test_resume_continues_the_same_curve(make_trainer, tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=7)
    straight.fit()
    paused = make_trainer(tmp_path / "b", epochs=7)
    paused.fit(stop_at=10)
    resumed = make_trainer(tmp_path / "b", epochs=7)
    resumed.fit(resume=True)
    assert resumed.step == straight.step == 21
    assert torch.allclose(_weights(resumed.model), _weights(straight.model), atol=1e-6)


def test_resume_mid_epoch_continues_the_same_curve(make_trainer, tmp_path):
    straight = make_trainer(tmp_path / "a", epochs=3)
    straight.fit()
    make_trainer(tmp_path / "b", epochs=3).fit(stop_at=4)  # 3 batches an epoch: step 4 is mid-epoch
    resumed = make_trainer(tmp_path / "b", epochs=3)
    resumed.fit(resume=True)
    assert torch.allclose(_weights(resumed.model), _weights(straight.model), atol=1e-6)


def test_non_finite_gradients_skip_the_step_and_training_goes_on(make_trainer):
    trainer = make_trainer(epochs=1)
    batch = next(iter(trainer.loader(0)))
    bad = {**batch, "pixel_values": batch["pixel_values"].clone()}
    bad["pixel_values"][0, 0, 0, 0] = float("nan")
    before = _weights(trainer.model).clone()
    row = trainer.train_step([bad])
    assert row["skipped"] and trainer.skipped == 1
    assert torch.equal(_weights(trainer.model), before)
    assert not trainer.train_step([batch])["skipped"]
    assert not torch.equal(_weights(trainer.model), before)


def test_gradient_accumulation_matches_one_big_batch(make_trainer, tmp_path):
    """Two micro-batches of 2 = one batch of 4 (no dropout/batch-norm noise in eval-free math)."""
    one = make_trainer(tmp_path / "one", batch_size=4)
    two = make_trainer(tmp_path / "two", batch_size=2, grad_accum=2)
    for trainer in (one, two):
        trainer.model.eval()  # fixed BN statistics and no dropout: the arithmetic must agree
        trainer.wrapped.train = lambda mode=True, m=trainer.model: m  # keep eval mode inside train_step
    batch = next(iter(one.loader(0, shuffle=False)))
    halves = [{k: (v[:2] if not isinstance(v, list) else v[:2]) for k, v in batch.items()},
              {k: (v[2:] if not isinstance(v, list) else v[2:]) for k, v in batch.items()}]
    row_one, row_two = one.train_step([batch]), two.train_step(halves)
    assert row_one["loss"] == pytest.approx(row_two["loss"], rel=0.2)  # per-half normalisations differ a bit
    assert math.isfinite(row_two["grad_norm_total"])


def test_amp_is_fp32_on_cpu_and_fp16_needs_cuda():
    assert resolve_amp("auto", torch.device("cpu")) == (None, False)
    assert resolve_amp("bf16", torch.device("cpu")) == (torch.bfloat16, False)
    with pytest.raises(ClipGuardError, match="fp16 needs a CUDA device"):
        resolve_amp("fp16", torch.device("cpu"))


def test_checkpoint_restores_the_same_model(make_trainer):
    trainer = make_trainer(epochs=1)
    trainer.fit()
    model, cfg = restore_model(load_checkpoint(trainer.out / "last.pt"))
    assert cfg == trainer.model_cfg
    assert torch.equal(_weights(model), _weights(trainer.model))


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable checkpoint"):
        load_checkpoint(bad)


def test_schedule_counts_only_full_batches(make_trainer):
    """12 rows in batches of 5 (drop_last) is 2 steps an epoch, not ceil(12 / 5) = 3."""
    assert make_trainer(batch_size=5, epochs=2).steps == 4


def test_too_few_rows_for_one_batch_is_refused_not_a_hang(make_trainer):
    with pytest.raises(ClipGuardError, match=r"12 rows give 0 full batch\(es\) of 16 per process \(world size 1\)"):
        make_trainer(batch_size=16)
