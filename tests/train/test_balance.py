"""train --balance: every class (and the text-only rows) drawn about equally often, deterministically per seed."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from edge_clipguard.train.balance import balanced_weights, row_groups


def test_each_group_weighs_one_in_total():
    groups = [0, 0, 0, 1, None, None]
    weights = balanced_weights(groups)
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5])


def test_a_row_is_grouped_by_its_first_box_label_or_as_text_only():
    rows = [SimpleNamespace(labels=[2, 2]), SimpleNamespace(labels=[]), SimpleNamespace(labels=[0])]
    assert row_groups(rows) == [2, None, 0]


def _drawn_groups(trainer, epochs: int) -> Counter:
    counts: Counter = Counter()
    for epoch in range(epochs):
        for batch in trainer.loader(epoch):
            counts.update(int(labels[0]) if len(labels) else None for labels in batch["labels"])
    return counts


def test_balanced_sampling_draws_every_group_about_equally_and_the_same_twice(make_trainer):
    plain, balanced = make_trainer(batch_size=4), make_trainer(batch_size=4, balance=True)
    groups = Counter(row_groups(balanced.train_set.samples))
    plain_draws, balanced_draws = _drawn_groups(plain, 40), _drawn_groups(balanced, 40)
    total = sum(balanced_draws.values())
    fair = total / len(groups)
    # the commonest group's share falls towards 1/groups, the rarest's rises towards it
    common, rare = groups.most_common()[0][0], groups.most_common()[-1][0]
    assert balanced_draws[common] < plain_draws[common] and balanced_draws[rare] > plain_draws[rare]
    assert all(0.6 * fair < balanced_draws[g] < 1.4 * fair for g in groups), (balanced_draws, groups)
    assert _drawn_groups(make_trainer(batch_size=4, balance=True), 40) == balanced_draws


def test_balance_under_ddp_is_a_one_line_error(tiny_cfg, tiny_tokenizer, tiny_sets, tmp_path):
    from edge_clipguard.errors import ClipGuardError
    from edge_clipguard.model import build_model
    from edge_clipguard.train.trainer import Trainer, TrainerConfig

    with pytest.raises(ClipGuardError, match="--balance samples on one process"):
        Trainer(build_model(tiny_cfg), tiny_cfg, tiny_tokenizer.to_str(), *tiny_sets,
                TrainerConfig(batch_size=4, balance=True, progress=False), tmp_path / "run", world_size=2)
