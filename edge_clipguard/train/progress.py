"""Training progress where someone reads it: a tqdm bar on a terminal, plain lines in a log file.

A bar redraws itself with carriage returns, which a terminal turns into one moving line but a log file keeps
as thousands of updates (the demo's log was mostly that). So the bar is used only when stderr is a terminal;
otherwise one plain line is printed every ``every`` steps and at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def default_every(total: int) -> int:
    """About twenty lines for a whole run, at least one step and at most 50 steps apart."""
    return max(1, min(50, total // 20 or 1))


class StepProgress:
    """``update(loss=..., clip=...)`` once per step; ``close()`` at the end. ``enabled=False`` prints nothing."""

    def __init__(self, total: int, initial: int = 0, desc: str = "train", enabled: bool = True,
                 every: int | None = None, stream: TextIO | None = None):
        self.total, self.step, self.desc = total, initial, desc
        self.stream = stream or sys.stderr
        self.every = every or default_every(total)
        self.enabled = enabled
        self.started = time.perf_counter()
        self.first = initial
        self.bar = None
        if enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream)

    def update(self, **postfix: object) -> None:
        self.step += 1
        if self.bar is not None:
            self.bar.set_postfix(**postfix)
            self.bar.update(1)
        elif self.enabled and (self.step % self.every == 0 or self.step == self.total):
            self._line(postfix)

    def _line(self, postfix: dict) -> None:
        elapsed = time.perf_counter() - self.started
        rate = (self.step - self.first) / elapsed if elapsed > 0 else 0.0
        extra = "".join(f", {key} {value}" for key, value in postfix.items())
        print(f"{self.desc}: step {self.step}/{self.total}{extra}, {rate:.2f} steps/s, {elapsed:.0f} s",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
