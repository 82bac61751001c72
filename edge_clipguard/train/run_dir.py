"""The run folder after a crash: what a killed ``train`` leaves behind and how ``--resume`` tidies it.

Checkpoints are written to a temporary name, fsynced and renamed (``atomic_path``), so SIGKILL at
any moment leaves ``last.pt`` whole (old or new) plus, at worst, an orphaned temporary file. The
JSONL logs are appended a row at a time, so they may run past the checkpoint the run resumes from
and may end in a torn line. Both are cleaned here, so a resumed run's folder reads as one run.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_text_atomic

RUN_FILES = ("last.pt", "best.pt", "steps.jsonl", "epochs.jsonl", "curves.png")


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed run left behind (``atomic_path`` names them
    ``.<final name>.<random>.tmp``; SIGKILL skips its clean-up). They are never read."""
    stale = [p for name in RUN_FILES for p in Path(run_dir).glob(f".{name}.*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def trim_log(path: Path, step: int) -> int:
    """Keep the complete JSON rows of ``path`` whose ``step`` is at most ``step`` (the resumed
    checkpoint's); returns how many rows were dropped. Rows past it are about to be redone, so
    keeping them would log those steps twice; a torn last line would be an unparseable row."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("step", 0) <= step:
            kept.append(line + "\n")
    write_text_atomic(path, "".join(kept))
    return len(lines) - len(kept)
