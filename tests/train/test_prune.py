"""``edge-clipguard prune``: torch-pruning on the tiny model; the pruned checkpoint goes through every command."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_pruning", reason="needs the [train] extra (torch-pruning)")

from edge_clipguard.cli import main  # noqa: E402
from edge_clipguard.model.clipguard import example_inputs  # noqa: E402
from edge_clipguard.train.checkpoint import load_checkpoint, restore_model  # noqa: E402
from edge_clipguard.train.prune import PruneRequest, prune_checkpoint  # noqa: E402

QUIET = lambda *_: None  # noqa: E731
# The tiny model's layers are 8-32 wide: keep 8 and round to 4 so a 0.6 target is reachable.
TINY = {"round_to": 4, "keep_min": 8}


@pytest.fixture(scope="module")
def pruned(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("pruned")
    result = prune_checkpoint(PruneRequest(str(tiny_checkpoint), str(out), flops=0.6, **TINY), log=QUIET)
    return result


def narrowed_layers(model: torch.nn.Module, source: torch.nn.Module) -> list[tuple[str, int, int]]:
    """(path, source width, pruned width) of every Conv2d/Linear whose output width changed."""
    widths = {}
    for path, module in source.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            widths[path] = getattr(module, "out_channels", None) or module.out_features
    changed = []
    for path, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            width = getattr(module, "out_channels", None) or module.out_features
            if width != widths[path]:
                changed.append((path, widths[path], width))
    return changed


def test_prune_lands_at_or_under_the_flops_target(pruned):
    before, after = pruned.before[-1].flops, pruned.after[-1].flops
    assert after <= 0.6 * before
    assert after > 0.3 * before  # the bisection stops near the target, not at the largest cut


def test_pruned_widths_are_multiples_of_round_to_and_at_least_keep_min(pruned, tiny_checkpoint):
    model, _ = restore_model(load_checkpoint(pruned.checkpoint))
    source, _ = restore_model(load_checkpoint(tiny_checkpoint))
    changed = narrowed_layers(model, source)
    assert changed, "nothing was pruned"
    for path, _, width in changed:
        assert width % 4 == 0 and width >= 8, (path, width)


def test_pruning_removes_whole_attention_heads(pruned):
    model, cfg = restore_model(load_checkpoint(pruned.checkpoint))
    attention = model.fusion.layers[0].image_from_text
    assert attention.num_heads < cfg.fusion.num_heads
    assert attention.q_proj.out_features == attention.num_heads * attention.head_dim
    bert = model.text_tower.bert.encoder.layer[0].attention.self
    assert bert.query.out_features == bert.num_attention_heads * bert.attention_head_size


def test_residual_widths_and_outputs_keep_their_size(pruned, tiny_cfg):
    model, _ = restore_model(load_checkpoint(pruned.checkpoint))
    raw = model(*example_inputs(tiny_cfg, batch=2))
    assert raw["heatmap"].shape[1] == tiny_cfg.num_classes and raw["score"].shape == (2,)
    assert raw["fused_text_embed"].shape == (2, tiny_cfg.fusion.dim)
    assert model.text_tower.bert.embeddings.word_embeddings.embedding_dim == tiny_cfg.text.hidden_size


def test_the_config_records_the_new_widths(pruned):
    payload = load_checkpoint(pruned.checkpoint)
    widths = payload["model_config"]["widths"]
    assert widths["tensors"] and widths["layers"]
    for name, shape in widths["tensors"].items():
        assert list(payload["model"][name].shape) == shape


def test_excluded_parts_keep_their_weights_so_the_score_is_unchanged(tiny_checkpoint, tiny_cfg, tmp_path):
    """Pruning only the box head leaves the text path whole: the score equals the source model's."""
    keep = ("text_tower", "image_tower", "text_proj", "image_proj", "fusion", "score_head", "refer_head")
    result = prune_checkpoint(PruneRequest(str(tiny_checkpoint), str(tmp_path), flops=0.9, exclude=keep, **TINY),
                              log=QUIET)
    model, _ = restore_model(load_checkpoint(result.checkpoint))
    source, _ = restore_model(load_checkpoint(tiny_checkpoint))
    inputs = example_inputs(tiny_cfg, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs)["score"], source(*inputs)["score"])
    assert {path.split(".")[0] for path, _, _ in narrowed_layers(model, source)} == {"box_head"}


def test_taylor_importance_ranks_channels_from_calibration_gradients(tiny_checkpoint, scenes_dir, tmp_path):
    common = dict(flops=0.6, calib=str(scenes_dir / "train.jsonl"), calib_batches=1, **TINY)
    magnitude = prune_checkpoint(PruneRequest(str(tiny_checkpoint), str(tmp_path / "m"), **common), log=QUIET)
    taylor = prune_checkpoint(PruneRequest(str(tiny_checkpoint), str(tmp_path / "t"), importance="taylor",
                                           **common), log=QUIET)
    kept_m = load_checkpoint(magnitude.checkpoint)["model"]
    kept_t = load_checkpoint(taylor.checkpoint)["model"]
    differs = [name for name in kept_m if kept_m[name].shape == kept_t[name].shape
               and not torch.equal(kept_m[name], kept_t[name])]
    assert differs, "taylor kept exactly the channels magnitude kept"


def test_pruned_checkpoint_exports_and_predicts(pruned, tmp_path, capsys):
    from PIL import Image

    bundle = tmp_path / "bundle"
    assert main(["export", str(pruned.checkpoint), "--out", str(bundle), "--engine", "never"]) == 0
    image = tmp_path / "red.png"
    Image.new("RGB", (80, 60), (220, 20, 20)).save(image)
    assert main(["predict", str(bundle), "--text", "About the stars", "--image", str(image),
                 "--backend", "onnxruntime"]) == 0
    assert "score" in capsys.readouterr().out


def test_pruned_checkpoint_fine_tunes_with_a_teacher_and_keeps_its_widths(pruned, tiny_checkpoint, scenes_dir,
                                                                          tmp_path):
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=2, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "run"),
                              trainer=trainer, init_from=str(pruned.checkpoint), teacher=str(tiny_checkpoint)),
                 log=QUIET)
    tuned = load_checkpoint(tmp_path / "run" / "last.pt")
    assert tuned["model_config"]["widths"] == load_checkpoint(pruned.checkpoint)["model_config"]["widths"]
    assert tuned["step"] == 2


def test_pruned_checkpoint_takes_qat(pruned, scenes_dir, tmp_path):
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=1, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),),
                              val_data=(str(scenes_dir / "test.jsonl"),), out=str(tmp_path / "qat"),
                              trainer=trainer, init_from=str(pruned.checkpoint), qat=True, calib_batches=1),
                 log=QUIET)
    payload = load_checkpoint(tmp_path / "qat" / "last.pt")
    assert payload["modelopt_state"] and payload["model_config"]["widths"]
    restore_model(payload)  # the quantized, pruned model restores


def test_info_and_evaluate_read_a_pruned_checkpoint(pruned, tiny_checkpoint, scenes_dir, capsys):
    assert main(["info", "--checkpoint", str(pruned.checkpoint)]) == 0
    total = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("total")][0]
    assert float(total.split()[1]) < 1.05  # params M: fewer than the tiny model's 1.05 M
    assert main(["evaluate", str(pruned.checkpoint), "--data", str(scenes_dir / "test.jsonl")]) == 0


def test_explain_reads_a_pruned_checkpoint(pruned, scenes_dir, tmp_path, capsys):
    from edge_clipguard.data.manifest import read_manifest

    image = read_manifest(scenes_dir / "test.jsonl")[0].image
    out = tmp_path / "explain.png"
    assert main(["explain", str(pruned.checkpoint), "--text", "About the stars: lovely", "--image", str(image),
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and "score" in capsys.readouterr().out


def test_training_a_pruned_config_from_scratch_is_refused(pruned, scenes_dir, tmp_path, capsys):
    import json

    config = tmp_path / "pruned.json"
    config.write_text(json.dumps(load_checkpoint(pruned.checkpoint)["model_config"]))
    assert main(["train", "--config", str(config), "--data", str(scenes_dir / "train.jsonl"),
                 "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 2
    assert "--init-from" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("args, expected", [
    (["--flops", "0.001"], "--flops 0.001: unreachable"),
    (["--exclude", "tail"], "--exclude tail: no such part"),
    (["--flops", "1.5"], "--flops must be a fraction"),
    (["--keep-min", "0"], "--keep-min must be >= 1"),
])
def test_bad_prune_requests_are_one_line_exit_2_and_write_nothing(args, expected, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prune", str(tiny_checkpoint), "--out", str(out), "--round-to", "4", "--keep-min", "8", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_qat_checkpoint_is_refused_with_prune_before_qat(scenes_dir, tmp_path, capsys):
    from edge_clipguard.train.run import TrainRequest, run_training
    from edge_clipguard.train.trainer import TrainerConfig

    trainer = TrainerConfig(epochs=1, max_steps=1, batch_size=4, lr=1e-4, warmup_steps=1, progress=False)
    run_training(TrainRequest(config="tiny", data=(str(scenes_dir / "train.jsonl"),), out=str(tmp_path / "qat"),
                              trainer=trainer, qat=True, calib_batches=1), log=QUIET)
    assert main(["prune", str(tmp_path / "qat" / "last.pt"), "--out", str(tmp_path / "out")]) == 2
    assert "prune before QAT" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_our_checkpoint_is_refused(tmp_path, capsys):
    foreign = tmp_path / "resnet.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, foreign)
    assert main(["prune", str(foreign), "--out", str(tmp_path / "out")]) == 2
    assert "not an edge-clipguard checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_config_with_malformed_widths_is_refused(tiny_cfg):
    from edge_clipguard.config import config_from_dict
    from edge_clipguard.errors import ConfigError

    data = {**tiny_cfg.to_dict(), "widths": {"layers": {"box_head.trunk.0": {"out_channels": 0}}, "tensors": {}}}
    with pytest.raises(ConfigError, match="out_channels"):
        config_from_dict(data)
