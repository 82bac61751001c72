"""Text augmentation that keeps the label true: what it may drop, what it never touches, how it is seeded."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

pytest.importorskip("vaderSentiment")

from edge_clipguard.config import AugmentConfig, config_from_dict, load_config  # noqa: E402
from edge_clipguard.data.text_augment import TextAugment  # noqa: E402
from edge_clipguard.errors import ConfigError  # noqa: E402

ON = AugmentConfig(text=True, word_drop=0.5, max_drop_fraction=0.5, punct_prob=1.0)
CLASSES = ("circle", "square", "triangle", "star", "cross", "ring")
TEXT = "About the crosses: The plot was not very good, but the actors were wonderful and the music stayed with me!"


def _draws(augment: TextAugment, text: str, n: int = 200) -> list[str]:
    return [augment(text, epoch, row) for epoch in range(n // 20) for row in range(20)]


def test_class_names_negations_intensifiers_and_sentiment_words_are_never_dropped():
    for draw in _draws(TextAugment(ON, CLASSES), TEXT):
        words = [w.strip(",.:!").lower() for w in draw.split()]
        for keep in ("crosses", "not", "very", "good", "but", "wonderful"):
            assert keep in words, (keep, draw)


def test_exclamation_and_question_marks_are_never_touched():
    text = "Is this the star? It is great!! Really, truly, deeply moving."
    for draw in _draws(TextAugment(ON, CLASSES), text):
        assert re.findall(r"[!?]", draw) == re.findall(r"[!?]", text)


def test_some_plain_words_are_dropped_but_never_more_than_the_budget():
    augment, words = TextAugment(ON, CLASSES), TEXT.split()
    lengths = [len(draw.split()) for draw in _draws(augment, TEXT)]
    assert min(lengths) >= len(words) - int(ON.max_drop_fraction * len(words))
    assert min(lengths) < len(words)


def test_draws_repeat_for_the_same_seed_epoch_and_row_and_change_with_the_epoch():
    augment = TextAugment(ON, CLASSES, seed=3)
    assert augment(TEXT, 1, 5) == TextAugment(ON, CLASSES, seed=3)(TEXT, 1, 5)
    assert len({augment(TEXT, epoch, 5) for epoch in range(10)}) > 1


def test_no_drop_and_no_punctuation_noise_leave_the_text_as_it_is():
    off = dataclasses.replace(ON, word_drop=0.0, punct_prob=0.0)
    assert all(draw == TEXT for draw in _draws(TextAugment(off, CLASSES), TEXT, 40))


def test_the_dataset_augments_texts_only_when_the_config_enables_it(scenes_dir, tiny_tokenizer):
    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.data.manifest import read_manifest

    rows = read_manifest(scenes_dir / "train.jsonl")[:4]
    plain = ManifestDataset(rows, tiny_tokenizer, 64, augment=AugmentConfig(), class_names=CLASSES)
    on = ManifestDataset(rows, tiny_tokenizer, 64, augment=ON, class_names=CLASSES)
    same = [np.array_equal(plain[i]["input_ids"], on[i]["input_ids"]) for i in range(4)]
    assert not all(same)
    assert np.array_equal(plain[0]["pixel_values"], on[0]["pixel_values"])  # images untouched: enabled is off


def test_out_of_range_text_augment_settings_name_the_field():
    data = {**load_config("tiny").to_dict(), "augment": {"text": True, "word_drop": 1.5}}
    with pytest.raises(ConfigError, match="augment.word_drop"):
        config_from_dict(data)


def test_train_augment_switches_text_augmentation_on_for_a_fine_tune(scenes_dir, tiny_checkpoint, tmp_path):
    from edge_clipguard.train.checkpoint import load_checkpoint
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=2, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "run"),
                              trainer=trainer, init_from=str(tiny_checkpoint), augment="text"), log=lambda *_: None)
    augment = load_checkpoint(tmp_path / "run" / "last.pt")["model_config"]["augment"]
    assert augment["text"] is True and augment["enabled"] is False
