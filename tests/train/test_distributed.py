"""DDP under torchrun: two CPU processes (gloo) train the tiny model and must end with the same weights."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = 3


def _torchrun(*args, cwd=None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def ddp_run(scenes_dir, tmp_path_factory):
    """Rank 0's starting weights and each rank's final weights after STEPS steps."""
    out = tmp_path_factory.mktemp("ddp")
    _torchrun(WORKER, "--data", scenes_dir / "train.jsonl", "--out", out, "--steps", STEPS)
    ranks = [torch.load(out / f"rank{r}.pt") for r in range(2)]
    return torch.load(out / "start.pt"), ranks


def test_both_ranks_ran_the_same_steps_in_a_world_of_two(ddp_run):
    _, ranks = ddp_run
    assert [(r["world_size"], r["steps"]) for r in ranks] == [(2, STEPS), (2, STEPS)]


def test_ranks_hold_identical_weights_after_training(ddp_run):
    """Ranks start from different seeds and see different shards: only DDP's broadcast and
    gradient all-reduce can make them agree bit for bit."""
    _, (rank0, rank1) = ddp_run
    assert rank0["params"].keys() == rank1["params"].keys()
    assert all(torch.equal(rank0["params"][name], rank1["params"][name]) for name in rank0["params"])


def test_training_changed_the_weights(ddp_run):
    start, (rank0, _) = ddp_run
    changed = [name for name, value in start.items() if not torch.equal(value, rank0["params"][name])]
    assert len(changed) > 0.9 * len(start)


def test_train_command_runs_under_torchrun(scenes_dir, tmp_path):
    """The product path: ``edge-clipguard train`` with two gloo processes on CPU."""
    out = tmp_path / "run"
    proc = _torchrun("-m", "edge_clipguard.cli", "train", "--config", "tiny", "--data", scenes_dir / "train.jsonl",
                     "--val-data", scenes_dir / "test.jsonl", "--out", out, "--epochs", "1", "--batch-size", "2",
                     "--warmup", "1", "--device", "cpu", "--no-progress")
    payload = torch.load(out / "last.pt", weights_only=False)
    assert "world size 2" in proc.stdout
    assert (payload["step"], payload["epoch"]) == (3, 1)  # 12 rows / 2 ranks / batch 2 = 3 steps per epoch
