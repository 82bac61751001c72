import hashlib

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.data.backgrounds import load_backgrounds
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.data.scenes import generate_scenes, render_scene
from edge_clipguard.data.shapes import SHAPE_CLASSES, plural, render_sprite
from edge_clipguard.data.vader import load_vader
from edge_clipguard.errors import DataError


def test_backgrounds_are_real_photos_from_installed_packages():
    photos = load_backgrounds()
    assert len(photos) >= 10
    assert all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for p in photos)
    assert all(p.std() > 10 for p in photos)  # textured photos, not flat fills


def test_sprite_is_cropped_to_its_exact_extent():
    sprite = render_sprite("star", 40, 30, (200, 50, 50), 20.0, np.random.default_rng(0))
    alpha = np.asarray(sprite.getchannel("A")) >= 128
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()


def test_at_least_five_object_classes():
    assert len(SHAPE_CLASSES) >= 5


def test_rendered_objects_lie_inside_the_image():
    for seed in range(20):
        image, boxes, labels = render_scene(np.random.default_rng(seed))
        assert 1 <= len(boxes) <= 6 and len(boxes) == len(labels)
        w, h = image.size
        assert all(0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h for x1, y1, x2, y2 in boxes)


def test_targets_are_only_the_referred_class_named_in_the_text(scenes_dir, vader_dir):
    sentences = {r.id: r.text for r in load_vader(vader_dir, split="train")}
    for sample in read_manifest(scenes_dir / "train.jsonl"):
        assert len(set(sample.labels)) == 1
        name = SHAPE_CLASSES[sample.labels[0]]
        expected = plural(name) if len(sample.labels) > 1 else name
        mention = sample.text[: len(sample.text) - len(sentences[sample.text_id])].lower()
        assert mention.rstrip(" .:-").endswith(f"the {expected}")


def test_scene_sentences_come_from_the_same_vader_split(scenes_dir, vader_dir):
    test_ids = {r.id: r for r in load_vader(vader_dir, split="test")}
    for sample in read_manifest(scenes_dir / "test.jsonl"):
        source = test_ids[sample.text_id]
        assert sample.score == source.score and sample.text.endswith(source.text)


def test_generation_is_deterministic(tmp_path, vader_dir):
    def digest(out):
        generate_scenes(out, count=3, seed=7, split="val", vader=vader_dir)
        h = hashlib.sha256((out / "val.jsonl").read_bytes())
        for f in sorted((out / "images" / "val").iterdir()):
            h.update(f.read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_images_on_disk_match_the_manifest(scenes_dir):
    for sample in read_manifest(scenes_dir / "train.jsonl"):
        with Image.open(sample.image) as image:
            w, h = image.size
        assert all(x2 <= w and y2 <= h for _, _, x2, y2 in sample.boxes)


def test_zero_count_is_refused(tmp_path, vader_dir):
    with pytest.raises(DataError, match="--count must be >= 1"):
        generate_scenes(tmp_path, count=0, seed=0, split="train", vader=vader_dir)
    assert not (tmp_path / "train.jsonl").exists()


def test_procedural_background_depends_only_on_the_seed():
    from edge_clipguard.data.procedural import procedural_background

    def draw(seed):
        return np.asarray(procedural_background(np.random.default_rng(seed), 96, 64))

    assert draw(3).shape == (64, 96, 3) and np.array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))


def test_procedural_backgrounds_are_textured_not_flat():
    from edge_clipguard.data.procedural import procedural_background

    spreads = [np.asarray(procedural_background(np.random.default_rng(s), 128, 128)).std(axis=(0, 1)).max()
               for s in range(8)]
    assert min(spreads) > 3.0


def test_procedural_scene_draws_no_packaged_photo(monkeypatch):
    import edge_clipguard.data.scenes as scenes

    def no_photos():
        raise AssertionError("a procedural scene must not read the packaged photos")

    monkeypatch.setattr(scenes, "load_backgrounds", no_photos)
    spec = scenes.SceneSpec(background="procedural")
    for seed in range(10):
        image, boxes, labels = render_scene(np.random.default_rng(seed), spec)
        w, h = image.size
        assert boxes and all(0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h for x1, y1, x2, y2 in boxes)


def test_unknown_background_kind_is_refused():
    from edge_clipguard.data.scenes import SceneSpec

    with pytest.raises(DataError, match="background must be one of"):
        render_scene(np.random.default_rng(0), SceneSpec(background="video"))
