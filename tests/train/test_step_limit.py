"""--max-steps runs N optimiser steps; --epochs alone keeps its meaning; both: whichever comes first.

The tiny fixtures give 12 rows in batches of 4: 3 steps an epoch.
"""

import pytest


def test_max_steps_alone_runs_that_many_steps_across_epochs(make_trainer):
    trainer = make_trainer(epochs=None, max_steps=7)
    trainer.fit()
    assert trainer.step == 7 and len((trainer.out / "steps.jsonl").read_text().splitlines()) == 7


def test_epochs_alone_keep_their_meaning(make_trainer):
    trainer = make_trainer(epochs=2)
    assert (trainer.steps, trainer.limit_reason) == (6, "6 steps: 2 epoch(s) of 3 steps")


@pytest.mark.parametrize(("epochs", "max_steps", "steps", "reason"), [
    (2, 60, 6, "--epochs (2 epoch(s) of 3 steps) comes before --max-steps 60"),
    (10, 4, 4, "--max-steps 4 comes before --epochs (10 epoch(s) of 3 steps)"),
])
def test_epochs_and_max_steps_stop_at_whichever_comes_first_and_say_so(make_trainer, epochs, max_steps, steps,
                                                                       reason):
    trainer = make_trainer(epochs=epochs, max_steps=max_steps)
    assert trainer.steps == steps and trainer.limit_reason == f"{steps} steps: {reason}"


def test_zero_epochs_is_refused(make_trainer):
    from edge_clipguard.errors import ClipGuardError

    with pytest.raises(ClipGuardError, match="--epochs must be >= 1"):
        make_trainer(epochs=0)
