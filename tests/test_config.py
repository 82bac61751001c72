import json

import pytest

from edge_clipguard.config import builtin_config_names, load_config
from edge_clipguard.errors import ConfigError


def _tiny_edited(tmp_path, file_name: str, section: str | None, key: str, value):
    """The tiny config written to ``tmp_path/file_name`` with one value changed (``section`` None: top level)."""
    data = load_config("tiny").to_dict()
    (data[section] if section else data)[key] = value
    path = tmp_path / file_name
    path.write_text(json.dumps(data))
    return path


def test_builtin_configs_include_tiny_and_base():
    assert {"tiny", "base"} <= set(builtin_config_names())


def test_base_config_names_the_real_pretrained_towers():
    cfg = load_config("base")
    assert (cfg.text.kind, cfg.image.kind, cfg.image.pretrained) == ("minilm", "efficientnet_lite0", True)
    assert cfg.num_classes >= 5


def test_config_file_path_loads(tmp_path):
    data = load_config("tiny").to_dict()
    data["heads"]["top_k"] = 5
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    assert load_config(path).heads.top_k == 5


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path):
    path = _tiny_edited(tmp_path, "typo.json", "fusion", "dimm", 3)
    with pytest.raises(ConfigError, match=r"typo\.json\.fusion: unknown key\(s\) \['dimm'\]"):
        load_config(path)


def test_wrong_type_is_an_error_naming_the_field(tmp_path):
    path = _tiny_edited(tmp_path, "bad.json", None, "image_size", "64")
    with pytest.raises(ConfigError, match=r"bad\.json\.image_size: expected an integer"):
        load_config(path)


def test_missing_config_lists_builtins():
    with pytest.raises(ConfigError, match="built-in configs are"):
        load_config("no-such-config")


def test_to_dict_round_trips():
    from edge_clipguard.config import config_from_dict

    for name in ("tiny", "base"):
        cfg = load_config(name)
        assert config_from_dict(cfg.to_dict()) == cfg


def test_fusion_strides_outside_the_towers_levels_are_an_error(tmp_path):
    path = _tiny_edited(tmp_path, "strides.json", "fusion", "image_strides", [16, 64])
    with pytest.raises(ConfigError, match=r"strides\.json: fusion\.image_strides must be distinct values from \["):
        load_config(path)


def test_freezing_the_random_simple_cnn_is_an_error(tmp_path):
    path = _tiny_edited(tmp_path, "frozen.json", "image", "frozen_below_stride", 8)
    with pytest.raises(ConfigError, match=r"frozen\.json: image\.frozen_below_stride needs image\.kind efficientnet"):
        load_config(path)


def test_small_config_keeps_minilms_first_three_pretrained_layers():
    import torch

    from edge_clipguard.model import build_model
    from edge_clipguard.model.text_tower import build_text_tower

    cfg = load_config("small")
    assert (cfg.text.num_layers, cfg.image_size, cfg.fusion.dim) == (3, 256, 128)
    student = build_model(cfg)
    full = build_text_tower(load_config("base").text)
    layers = student.text_tower.bert.encoder.layer
    assert len(layers) == 3
    assert torch.equal(layers[2].output.dense.weight, full.bert.encoder.layer[2].output.dense.weight)
    restored = build_model(cfg, pretrained=False)
    restored.load_state_dict(student.state_dict())  # a checkpoint of it loads back


def test_minilm_layer_count_outside_the_pretrained_file_is_an_error(tmp_path):
    data = load_config("small").to_dict()
    data["text"]["num_layers"] = 7
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="text.num_layers must be 1..6 for minilm"):
        load_config(path)


def test_an_unknown_resize_method_is_an_error_naming_it(tmp_path):
    path = _tiny_edited(tmp_path, "resize.json", None, "resize", "bicubic")
    with pytest.raises(ConfigError, match=r"resize\.json: resize must be one of \['opencv', 'pillow-bilinear'\]"):
        load_config(path)


def test_a_new_config_resizes_with_opencv():
    assert load_config("tiny").resize == "opencv"
