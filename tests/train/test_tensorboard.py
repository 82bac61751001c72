"""train --tensorboard: the event files hold every loss term, the gradient norms and clip facts, the LR, the
skipped steps, the evaluation metrics and annotated scenes, read back with TensorBoard's own reader."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tensorboard")


@pytest.fixture()
def run(make_trainer, tmp_path):
    out = tmp_path / "run"
    trainer = make_trainer(out=out, epochs=1, tensorboard=str(tmp_path / "tb"))
    trainer.fit()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events, [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_every_step_scalar_is_logged_with_the_values_of_steps_jsonl(run):
    events, steps = run
    tags = set(events.Tags()["scalars"])
    terms = {k for k in steps[0] if k not in {"step", "epoch", "lr", "loss", "grad_norm_post", "clip_threshold",
                                              "clipped", "skipped", "skipped_total"} and not k.startswith("grad_norm_")}
    groups = {k.removeprefix("grad_norm_") for k in steps[0] if k.startswith("grad_norm_") and k != "grad_norm_post"}
    assert {"loss/total", "grad_norm/post", "clip/threshold", "clip/clipped", "lr", "skipped/total"} <= tags
    assert {f"loss/{t}" for t in terms} <= tags and {f"grad_norm/pre/{g}" for g in groups} <= tags
    assert terms and groups
    logged = [(e.step, e.value) for e in events.Scalars("loss/total")]
    assert logged == [(row["step"], pytest.approx(row["loss"], rel=1e-6)) for row in steps]
    assert [e.value for e in events.Scalars("lr")] == [pytest.approx(row["lr"]) for row in steps]


def test_each_evaluation_logs_its_metrics_and_annotated_scenes(run):
    events, steps = run
    assert "eval/loss" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("eval/loss")] == [steps[-1]["step"]]
    [image_event] = events.Images("eval/scenes")
    assert image_event.width > 0 and image_event.height > 0
