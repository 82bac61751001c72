import numpy as np
import torch

from edge_clipguard.data.dataset import ManifestDataset, collate
from edge_clipguard.data.manifest import Sample, read_manifest
from edge_clipguard.data.vader import load_vader
from edge_clipguard.model.clipguard import BOX_STRIDE
from edge_clipguard.train.targets import box_targets


def test_scene_items_carry_letterboxed_boxes(scenes_dir, tiny_tokenizer, tiny_cfg):
    samples = read_manifest(scenes_dir / "train.jsonl")
    item = ManifestDataset(samples, tiny_tokenizer, tiny_cfg.image_size)[0]
    assert item["pixel_values"].shape == (3, 64, 64) and bool(item["has_image"])
    assert item["boxes"].shape == (len(samples[0].boxes), 4)
    assert (item["boxes"] >= 0).all() and (item["boxes"] <= 64).all()


def test_text_only_rows_have_no_image_and_no_boxes(vader_dir, tiny_tokenizer, tiny_cfg):
    sample = load_vader(vader_dir, split="val")[0]
    batch = collate([ManifestDataset([sample], tiny_tokenizer, tiny_cfg.image_size)[0]])
    assert not bool(batch["has_image"][0]) and batch["boxes"][0].shape == (0, 4)
    assert float(batch["score"][0]) == sample.score


def test_rows_without_a_score_are_masked_by_has_score(scenes_dir, tiny_tokenizer, tiny_cfg):
    import dataclasses

    sample = read_manifest(scenes_dir / "train.jsonl")[0]
    dataset = ManifestDataset([sample, dataclasses.replace(sample, score=None)], tiny_tokenizer, tiny_cfg.image_size)
    batch = collate([dataset[0], dataset[1]])
    assert batch["has_score"].tolist() == [True, False] and float(batch["score"][1]) == 0.0


def test_box_target_peak_sits_at_the_box_centre_of_its_class():
    boxes = [torch.tensor([[16.0, 24.0, 48.0, 40.0]])]
    t = box_targets(boxes, [torch.tensor([2])], num_classes=3, grid=8, stride=BOX_STRIDE)
    peak = np.unravel_index(int(t["heatmap"][0, 2].argmax()), (8, 8))
    assert tuple(peak) == (4, 4) and float(t["heatmap"][0, 2].max()) == 1.0
    assert float(t["heatmap"][0, :2].max()) == 0.0
    assert torch.allclose(t["log_size"][0, :, 4, 4], torch.log(torch.tensor([4.0, 2.0])))
    assert t["center_mask"].sum() == 1


def test_referred_target_marks_the_classes_of_the_target_boxes():
    boxes = [torch.tensor([[0.0, 0.0, 16.0, 16.0], [32.0, 32.0, 48.0, 48.0]]), torch.zeros(0, 4)]
    t = box_targets(boxes, [torch.tensor([1, 1]), torch.zeros(0, dtype=torch.int64)], num_classes=3, grid=8,
                    stride=BOX_STRIDE)
    assert t["referred"].tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_unreadable_image_is_a_data_error(tmp_path, tiny_tokenizer):
    import pytest

    from edge_clipguard.errors import DataError

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    dataset = ManifestDataset([Sample(image=str(bad), text="x", score=1.0)], tiny_tokenizer, 64)
    with pytest.raises(DataError, match=r"bad\.jpg: not an image"):
        dataset[0]
