"""``data scenes --shift``: shifted test scenes (dark, blur, small objects, clutter) beside the normal split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.cli import main
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.data.scenes import generate_scenes

COUNT = 6


@pytest.fixture(scope="module")
def shifted(tmp_path_factory, vader_dir):
    """{shift or "normal": rows} of the same 6 test scenes rendered normally and under every shift."""
    out = tmp_path_factory.mktemp("shifted")
    sets = {"normal": read_manifest(generate_scenes(out, COUNT, 0, "test", vader_dir))}
    for shift in ("dark", "blur", "small", "clutter"):
        sets[shift] = read_manifest(generate_scenes(out, COUNT, 0, "test", vader_dir, shift=shift))
    return sets


def pixels(row) -> np.ndarray:
    return np.asarray(Image.open(row.image).convert("RGB"), dtype=np.float32)


@pytest.mark.parametrize("shift", ["dark", "blur"])
def test_photometric_shifts_keep_each_scenes_objects_boxes_and_text(shifted, shift):
    for normal, moved in zip(shifted["normal"], shifted[shift]):
        assert (moved.boxes, moved.labels, moved.text, moved.score) == (normal.boxes, normal.labels, normal.text,
                                                                          normal.score)
        assert moved.id.startswith(f"scenes:test-{shift}:") and "images/test-" + shift in str(moved.image)


def test_dark_scenes_are_less_than_half_as_bright(shifted):
    ratio = np.mean([pixels(d).mean() / pixels(n).mean() for n, d in zip(shifted["normal"], shifted["dark"])])
    assert ratio < 0.5


def test_blur_removes_fine_detail(shifted):
    def detail(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert all(detail(pixels(b)) < 0.7 * detail(pixels(n)) for n, b in zip(shifted["normal"], shifted["blur"]))


def test_small_shift_renders_objects_about_a_third_the_size(shifted):
    def median_side(rows) -> float:
        return float(np.median([max(x2 - x1, y2 - y1) for r in rows for x1, y1, x2, y2 in r.boxes]))

    assert median_side(shifted["small"]) < 0.6 * median_side(shifted["normal"])


def test_clutter_adds_strokes_over_the_same_backgrounds(shifted):
    def edges(rows) -> float:
        return float(np.mean([np.abs(np.diff(pixels(r), axis=0)).mean() for r in rows]))

    assert edges(shifted["clutter"]) > 1.2 * edges(shifted["normal"])


def test_an_unknown_shift_is_refused_by_the_cli(tmp_path, vader_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices: exit 2 with the valid ones
        main(["data", "scenes", "--out", str(tmp_path), "--count", "2", "--split", "test", "--shift", "fog",
              "--vader", str(vader_dir)])
    assert exit_info.value.code == 2
    assert "dark" in capsys.readouterr().err and not (tmp_path / "test-fog.jsonl").exists()
