"""Crash-safe training, proven: SIGKILL ``edge-clipguard train`` at random moments, resume, compare.

Runs ``train`` once uninterrupted (the reference), then again as a chain of processes each killed
with SIGKILL and continued with ``--resume``. Half the kills land at a random moment of the run,
half right inside a checkpoint write (the parent polls for the temporary file ``atomic_path``
creates and kills a random 0-8 ms after it appears). After every kill it loads ``last.pt`` (and
``best.pt``) with the package's own loader; when a run reaches the end, it compares the per-step
losses in ``steps.jsonl`` and the final weights with the reference run. Prints a table and writes
JSON (default ``benchmarks/results/bench_crash_resume_<tag>.json``).

    python benchmarks/bench_crash_resume.py --trials 24 --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WRITE_WINDOW_S = 0.008  # kill at most this long after a checkpoint temp file appears (a write takes ~15-40 ms)


def train_command(args, out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "edge_clipguard.cli", "train", "--config", "tiny", "--data", str(args.data),
           "--val-data", str(args.val_data), "--out", str(out), "--max-steps", str(args.steps), "--batch-size",
           str(args.batch_size), "--lr", "3e-3", "--warmup", "2", "--seed", str(args.seed), "--no-progress"]
    return cmd + (["--resume"] if resume else [])


def checkpoint_state(out: Path) -> dict:
    """Whether each checkpoint present loads with the package's loader, and at which step."""
    from edge_clipguard.train.checkpoint import CheckpointError, load_checkpoint

    state = {}
    for name in ("last.pt", "best.pt"):
        if (out / name).exists():
            try:
                state[name] = {"loadable": True, "step": load_checkpoint(out / name)["step"]}
            except CheckpointError as exc:
                state[name] = {"loadable": False, "error": str(exc)}
    return state


def checkpoint_temp_files(out: Path) -> list[str]:
    """Temporary files of checkpoint writes in progress (or orphaned by a kill)."""
    return sorted(p.name for p in out.glob(".*.pt.*.tmp"))


def kill_once(args, out: Path, mode: str, rng: random.Random, timing: dict) -> dict:
    """Start train (resuming when last.pt exists), SIGKILL it per ``mode``; returns the trial's record.
    A random kill falls anywhere in the time this run should take: start-up plus its share of the
    reference run's steps (a resumed run has fewer left)."""
    resume = (out / "last.pt").exists()
    done = checkpoint_state(out).get("last.pt", {}).get("step", 0) if resume else 0
    expected_s = timing["startup_s"] + timing["train_s"] * (args.steps - done) / args.steps
    before = set(checkpoint_temp_files(out))  # orphans of the previous kill; train deletes them on start
    started = time.perf_counter()
    proc = subprocess.Popen(train_command(args, out, resume), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if mode == "random":
        deadline = started + rng.uniform(0.0, expected_s)
        while time.perf_counter() < deadline and proc.poll() is None:
            time.sleep(0.005)
    else:  # inside the k-th checkpoint write this process starts (k in 1..3, so chains move on)
        seen, wanted, writes = set(before), rng.randint(1, 3), 0
        while proc.poll() is None and writes < wanted:
            new = set(checkpoint_temp_files(out)) - seen
            writes += len(new)
            seen |= new
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, WRITE_WINDOW_S))
    killed_at = time.perf_counter() - started
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    stderr = proc.stderr.read().decode(errors="replace").strip()
    return {"mode": mode, "resumed": resume, "killed_at_s": round(killed_at, 3),
            "killed": proc.returncode == -signal.SIGKILL, "returncode": proc.returncode,
            "left_temp_files": sorted(set(checkpoint_temp_files(out)) - before), "checkpoints": checkpoint_state(out),
            "stderr_tail": stderr.splitlines()[-1] if proc.returncode not in (0, -signal.SIGKILL) and stderr else ""}


def reference_run(args, out: Path) -> dict:
    """The uninterrupted run; returns its start-up time (until the first step is logged) and the rest."""
    started = time.perf_counter()
    proc = subprocess.Popen(train_command(args, out, resume=False), stdout=subprocess.DEVNULL)
    while proc.poll() is None and not (out / "steps.jsonl").exists():
        time.sleep(0.01)
    startup = time.perf_counter() - started
    if proc.wait() != 0:
        raise SystemExit(f"reference run failed with exit code {proc.returncode}")
    return {"startup_s": startup, "train_s": time.perf_counter() - started - startup}


def read_log(path: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["step"]: row for row in rows}


def compare_runs(reference: Path, resumed: Path) -> dict:
    """Per-step losses and final weights of a killed-and-resumed run vs the uninterrupted one."""

    from edge_clipguard.train.checkpoint import load_checkpoint

    ref, got = read_log(reference / "steps.jsonl"), read_log(resumed / "steps.jsonl")
    rows = len((resumed / "steps.jsonl").read_text().splitlines())
    loss_diff = max((abs(ref[s]["loss"] - got[s]["loss"]) for s in ref if s in got), default=float("inf"))
    a, b = load_checkpoint(reference / "last.pt")["model"], load_checkpoint(resumed / "last.pt")["model"]
    weight_diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
    val = read_log(reference / "epochs.jsonl"), read_log(resumed / "epochs.jsonl")
    val_diff = max((abs(val[0][s]["val_loss"] - val[1][s]["val_loss"]) for s in val[0] if s in val[1]),
                   default=float("inf"))
    return {"steps_reference": len(ref), "steps_resumed": len(got), "log_rows": rows,
            "same_steps": sorted(ref) == sorted(got) and rows == len(got), "loss_max_abs_diff": loss_diff,
            "val_loss_max_abs_diff": val_diff, "weight_max_abs_diff": weight_diff}


def run(args) -> dict:
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    timing = reference_run(args, work / "reference")
    rng = random.Random(args.seed)
    trials, chains = [], []
    chain = 0
    out = work / f"chain{chain}"
    kills = 0
    while kills < args.trials and len(trials) < 4 * args.trials:
        record = kill_once(args, out, "write" if kills % 2 == 0 else "random", rng, timing)
        record.update(trial=len(trials) + 1, chain=chain)
        trials.append(record)
        kills += record["killed"]
        if not record["killed"]:  # it finished (or failed) before the kill: compare and start a new chain
            chains.append({"chain": chain, **compare_runs(work / "reference", out)})
            chain += 1
            out = work / f"chain{chain}"
    if (out / "last.pt").exists() or out.exists():
        subprocess.run(train_command(args, out, resume=(out / "last.pt").exists()), check=True,
                       stdout=subprocess.DEVNULL)
        chains.append({"chain": chain, **compare_runs(work / "reference", out)})
    killed = [t for t in trials if t["killed"]]
    with_last = [t for t in killed if "last.pt" in t["checkpoints"]]
    summary = {
        "trials": len(trials), "killed": len(killed),
        "killed_mid_write": sum(bool(t["left_temp_files"]) for t in killed),
        "killed_with_last_pt": len(with_last),
        "last_pt_loadable": sum(t["checkpoints"]["last.pt"]["loadable"] for t in with_last),
        "best_pt_loadable_or_absent": sum(all(c["loadable"] for c in t["checkpoints"].values()) for t in killed),
        "chains_completed": len(chains),
        "loss_max_abs_diff": max(c["loss_max_abs_diff"] for c in chains),
        "weight_max_abs_diff": max(c["weight_max_abs_diff"] for c in chains),
        "all_same_steps": all(c["same_steps"] for c in chains),
        "reference_run_s": round(timing["startup_s"] + timing["train_s"], 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return {"config": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "trials": trials,
            "chains": chains, "torch_threads": os.environ.get("OMP_NUM_THREADS", "default")}


def format_table(result: dict) -> str:
    lines = [f"{'trial':>5} {'chain':>5} {'mode':<7}{'resumed':<8}{'killed at s':>12} {'mid-write':<10}"
             f"{'last.pt':<16}best.pt"]
    for t in result["trials"]:
        ckpt = t["checkpoints"]
        last = ckpt.get("last.pt")
        last_text = "absent" if last is None else (f"ok step {last['step']}" if last["loadable"] else "UNREADABLE")
        best = ckpt.get("best.pt")
        best_text = "absent" if best is None else ("ok" if best["loadable"] else "UNREADABLE")
        status = "" if t["killed"] else f"  (exited {t['returncode']} before the kill) {t['stderr_tail']}"
        lines.append(f"{t['trial']:>5} {t['chain']:>5} {t['mode']:<7}{'yes' if t['resumed'] else 'no':<8}"
                     f"{t['killed_at_s']:>12.3f} {'yes' if t['left_temp_files'] else 'no':<10}{last_text:<16}"
                     f"{best_text}{status}")
    s = result["summary"]
    lines.append(f"killed {s['killed']}/{s['trials']} (mid-write {s['killed_mid_write']}); last.pt loadable "
                 f"{s['last_pt_loadable']}/{s['killed_with_last_pt']} kills that had one; best.pt loadable or absent "
                 f"{s['best_pt_loadable_or_absent']}/{s['killed']}")
    lines.append(f"resumed runs completed {s['chains_completed']}: same steps {s['all_same_steps']}, "
                 f"loss max |diff| {s['loss_max_abs_diff']:.3g}, weights max |diff| {s['weight_max_abs_diff']:.3g}")
    return "\n".join(lines)


def _default_data(work: Path, seed: int) -> tuple[Path, Path]:
    from edge_clipguard.data.scenes import generate_scenes
    from edge_clipguard.paths import default_vader_dir

    scenes = work.parent / f"{work.name}_scenes"
    for split, count in (("train", 12), ("test", 6)):
        if not (scenes / f"{split}.jsonl").is_file():
            generate_scenes(scenes, count, seed, split, default_vader_dir())
    return scenes / "train.jsonl", scenes / "test.jsonl"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24,
                        help="SIGKILLs in all, half timed into a checkpoint write (runs that end first do not count)")
    parser.add_argument("--steps", type=int, default=30, help="--max-steps of each run")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="training manifest (default: 12 fresh tiny scenes)")
    parser.add_argument("--val-data", help="validation manifest (default: 6 fresh test scenes)")
    parser.add_argument("--work", default="runs/bench_crash_resume", help="scratch folder (emptied first)")
    parser.add_argument("--tag", default="tiny")
    parser.add_argument("--json", help=f"result file (default {RESULTS_DIR}/bench_crash_resume_<tag>.json)")
    args = parser.parse_args(argv)
    if not (args.data and args.val_data):
        args.data, args.val_data = _default_data(Path(args.work), args.seed)
    result = run(args)
    print(format_table(result))
    path = Path(args.json or RESULTS_DIR / f"bench_crash_resume_{args.tag}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"json: {path}")
    return result


if __name__ == "__main__":
    main()
