"""A checkpoint is data: a pickle that would run code is refused by every command before it runs."""

from __future__ import annotations

import os

import pytest
import torch

from edge_clipguard.cli import main
from edge_clipguard.train.checkpoint import CheckpointError, load_checkpoint


class _CreatesFile:
    """Unpickling this calls ``os.mkdir(path)``: proof that loading ran code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture()
def planted(tmp_path, tiny_checkpoint):
    """(path of a real tiny checkpoint with one extra entry whose unpickling creates ``sentinel``, sentinel)."""
    sentinel = tmp_path / "code_ran"
    payload = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    payload["metrics"] = {"note": _CreatesFile(sentinel)}
    path = tmp_path / "planted" / "last.pt"
    path.parent.mkdir()
    torch.save(payload, path)
    return path, sentinel


def test_load_checkpoint_refuses_a_pickle_that_runs_code(planted):
    path, sentinel = planted
    with pytest.raises(CheckpointError, match=r"refused: its pickle asks for posix\.mkdir"):
        load_checkpoint(path)
    assert not sentinel.exists()


def test_load_checkpoint_still_reads_a_plain_checkpoint(tiny_checkpoint):
    payload = load_checkpoint(tiny_checkpoint)
    assert payload["format"] == "edge-clipguard-checkpoint" and isinstance(payload["model"], dict)


COMMANDS = {
    "export": lambda ck, tmp, data, bundle: ["export", ck, "--out", str(tmp / "bundle"), "--engine", "never"],
    "evaluate": lambda ck, tmp, data, bundle: ["evaluate", ck, "--data", data],
    "explain": lambda ck, tmp, data, bundle: ["explain", ck, "--text", "a star", "--image", str(bundle[1]),
                                              "--out", str(tmp / "x.png")],
    "info": lambda ck, tmp, data, bundle: ["info", "--checkpoint", ck],
    "train --init-from": lambda ck, tmp, data, bundle: ["train", "--init-from", ck, "--data", data,
                                                        "--out", str(tmp / "run"), "--max-steps", "1"],
    "train --teacher": lambda ck, tmp, data, bundle: ["train", "--config", "tiny", "--teacher", ck, "--data", data,
                                                      "--out", str(tmp / "run"), "--max-steps", "1"],
    "train --resume": lambda ck, tmp, data, bundle: ["train", "--config", "tiny", "--resume", "--data", data,
                                                     "--out", str(os.path.dirname(ck)), "--max-steps", "1"],
    "profile --compare-torch": lambda ck, tmp, data, bundle: ["profile", str(bundle[0]), "--compare-torch", ck,
                                                              "--iters", "2", "--warmup", "0", "--batch", "1",
                                                              "--no-stream"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_a_code_running_checkpoint_in_one_line(command, planted, tmp_path, scenes_dir,
                                                                     tiny_bundle, capsys):
    path, sentinel = planted
    image = next((scenes_dir / "images" / "test").iterdir())
    argv = COMMANDS[command](str(path), tmp_path, str(scenes_dir / "test.jsonl"), (tiny_bundle, image))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "refused: its pickle asks for posix.mkdir" in err, err
    assert not sentinel.exists()
