"""explain: heat map, Grad-CAM and token attribution of a (trained tiny) checkpoint, and the command."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.cli import main


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    from edge_clipguard.train.checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model

    payload = load_checkpoint(tiny_checkpoint)
    model, _ = restore_model(payload)
    return model, load_tokenizer_from_checkpoint(payload)


@pytest.fixture(scope="module")
def scene(scenes_dir):
    from edge_clipguard.data.manifest import read_manifest
    from edge_clipguard.image_io import load_image

    row = next(r for r in read_manifest(scenes_dir / "test.jsonl") if r.boxes)
    return row, load_image(row.image)


def _explain(trained, text, image, class_index=None):
    from edge_clipguard.model.explain import explain

    model, tokenizer = trained
    return explain(model, tokenizer, text, image, class_index)


def test_maps_have_the_image_aspect_and_range(trained, scene):
    row, image = scene
    e = _explain(trained, row.text, image)
    for values in (e.heatmap, e.cam_score, e.cam_detection):
        assert values.shape == (image.height, image.width)
        assert 0.0 <= values.min() and values.max() <= 1.0


def test_maps_are_not_constant_for_a_trained_model(trained, scene):
    row, image = scene
    e = _explain(trained, row.text, image)
    assert e.heatmap.std() > 0 and e.cam_score.std() > 0 and e.cam_detection.std() > 0


def test_masking_the_referred_class_moves_the_heat_map(trained, scene):
    row, image = scene
    named = _explain(trained, row.text, image)
    masked_text = row.text.replace(row.text.split(":")[0], "About the [MASK]") if ":" in row.text else "[MASK]"
    masked = _explain(trained, masked_text, image, class_index=named.class_index)
    assert np.abs(named.heatmap - masked.heatmap).mean() > 1e-4


def test_token_attribution_has_one_value_per_token(trained, scene):
    row, image = scene
    e = _explain(trained, row.text, image)
    assert len(e.tokens) == len(e.token_attribution) and e.tokens[0] == "[CLS]"
    assert np.abs(e.token_attribution).max() > 0


def test_explain_command_writes_a_png_with_three_panels(tiny_checkpoint, scene, tmp_path):
    row, image = scene
    out = tmp_path / "why.png"
    assert main(["explain", str(tiny_checkpoint), "--text", row.text, "--image", row.image, "--out", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 3 * picture.height // 2


def test_explain_command_refuses_an_unknown_class(tiny_checkpoint, scene, tmp_path, capsys):
    row, _ = scene
    code = main(["explain", str(tiny_checkpoint), "--text", "x", "--image", row.image, "--out", str(tmp_path / "o.png"),
                 "--class", "dragon"])
    assert code == 2 and "--class: 'dragon' is not one of" in capsys.readouterr().err


def test_info_prints_parameters_and_flops_per_part(capsys):
    assert main(["info", "--config", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP" in out and "image_tower" in out and "total" in out
