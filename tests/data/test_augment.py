"""Box-aware training augmentation (albumentations): boxes follow the pixels, seeded draws, consistent targets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("albumentations", reason="needs the [train] extra (albumentations)")

from edge_clipguard.config import AugmentConfig, config_from_dict, load_config  # noqa: E402
from edge_clipguard.data.augment import BoxAugment  # noqa: E402
from edge_clipguard.errors import ConfigError  # noqa: E402

GREY = (128, 128, 128)
RED, BLUE = (255, 0, 0), (0, 0, 255)
ON = AugmentConfig(enabled=True)
GEOMETRY_ONLY = dataclasses.replace(ON, crop_prob=1.0, max_zoom=2.5, jitter_prob=0.0)


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grey 200x160 image with a red box in the middle and a blue one at the top-left corner."""
    image = np.full((160, 200, 3), GREY, dtype=np.uint8)
    boxes = np.asarray([[80, 60, 120, 100], [2, 2, 30, 26]], dtype=np.float32)
    for (x1, y1, x2, y2), colour in zip(boxes.astype(int), (RED, BLUE)):
        image[y1:y2, x1:x2] = colour
    return image, boxes, np.asarray([0, 1])


def colour_box(image: np.ndarray, colour) -> np.ndarray | None:
    ys, xs = np.nonzero(np.all(np.abs(image.astype(int) - colour) < 60, axis=-1))
    return None if len(xs) == 0 else np.asarray([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_kept_boxes_follow_their_objects_through_zoom_shift_and_flip():
    augment = BoxAugment(GEOMETRY_ONLY, GREY, seed=0)
    for index in range(12):
        image, boxes, labels = augment(*scene(), epoch=0, index=index)
        for box, label in zip(boxes, labels):
            drawn = colour_box(image, RED if label == 0 else BLUE)
            assert drawn is not None
            np.testing.assert_allclose(box, drawn, atol=3)


def test_a_box_pushed_mostly_out_of_frame_is_dropped():
    augment = BoxAugment(GEOMETRY_ONLY, GREY, seed=0)
    kept_corner = [1 in augment(*scene(), epoch=0, index=i)[2] for i in range(16)]
    assert not all(kept_corner) and any(kept_corner)


def test_a_row_never_loses_all_its_boxes():
    """The text asks for the class: a draw that would remove every box is redrawn, else only flipped/jittered."""
    image = np.full((160, 200, 3), GREY, dtype=np.uint8)
    image[2:14, 2:14] = BLUE
    augment = BoxAugment(dataclasses.replace(GEOMETRY_ONLY, max_zoom=6.0), GREY, seed=0)
    for index in range(10):
        _, boxes, labels = augment(image, np.asarray([[2, 2, 14, 14]], np.float32), np.asarray([1]), 0, index)
        assert len(boxes) == 1 and labels.tolist() == [1]


def test_draws_repeat_for_the_same_seed_epoch_and_row_and_change_with_the_epoch():
    augment = BoxAugment(ON, GREY, seed=3)
    first = augment(*scene(), epoch=1, index=5)
    again = BoxAugment(ON, GREY, seed=3)(*scene(), epoch=1, index=5)
    other_epoch = augment(*scene(), epoch=2, index=5)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other_epoch[0])


def test_flip_mirrors_boxes_exactly():
    flip = dataclasses.replace(ON, crop_prob=0.0, jitter_prob=0.0, flip_prob=1.0)
    image, boxes, _ = BoxAugment(flip, GREY)(*scene(), epoch=0, index=0)
    np.testing.assert_allclose(boxes[0], [200 - 120, 60, 200 - 80, 100])
    assert np.array_equal(image, scene()[0][:, ::-1])


def test_the_dataset_augments_only_when_the_config_enables_it(scenes_dir, tiny_tokenizer):
    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.data.manifest import read_manifest

    rows = read_manifest(scenes_dir / "train.jsonl")[:2]
    plain = ManifestDataset(rows, tiny_tokenizer, 64)
    off = ManifestDataset(rows, tiny_tokenizer, 64, augment=AugmentConfig())
    on = ManifestDataset(rows, tiny_tokenizer, 64, augment=dataclasses.replace(ON, jitter_prob=1.0))
    assert np.array_equal(plain[0]["pixel_values"], off[0]["pixel_values"])
    assert not np.array_equal(plain[0]["pixel_values"], on[0]["pixel_values"])
    assert len(on[0]["boxes"]) >= 1


def test_training_with_augmentation_enabled_in_the_config_json_runs(scenes_dir, tmp_path):
    import json

    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    config = tmp_path / "tiny_aug.json"
    config.write_text(json.dumps({**load_config("tiny").to_dict(), "augment": {"enabled": True}}))
    trainer = TrainerConfig(epochs=1, max_steps=2, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config=str(config), data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "run"),
                              trainer=trainer), log=lambda *_: None)
    from edge_clipguard.train.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "run" / "last.pt")["model_config"]["augment"]["enabled"] is True


def test_out_of_range_augment_settings_name_the_field():
    data = {**load_config("tiny").to_dict(), "augment": {"enabled": True, "crop_prob": 1.5}}
    with pytest.raises(ConfigError, match="augment.crop_prob"):
        config_from_dict(data)
