"""Training progress: plain lines in a log file, a tqdm bar only on a terminal."""

from __future__ import annotations

import io

from edge_clipguard.train.progress import StepProgress, default_every


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_one_plain_line_every_n_steps_and_at_the_end():
    log = io.StringIO()
    progress = StepProgress(total=25, every=10, stream=log)
    for _ in range(25):
        progress.update(loss="0.500", clip="n")
    progress.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 3
    assert [line.split(",")[0] for line in lines] == ["train: step 10/25", "train: step 20/25", "train: step 25/25"]
    assert "loss 0.500, clip n" in lines[0]


def test_a_terminal_gets_the_tqdm_bar():
    terminal = _Terminal()
    progress = StepProgress(total=5, stream=terminal)
    for _ in range(5):
        progress.update(loss="1.0")
    progress.close()
    assert "\r" in terminal.getvalue() and "5/5" in terminal.getvalue()


def test_disabled_progress_prints_nothing():
    log = io.StringIO()
    progress = StepProgress(total=5, every=1, enabled=False, stream=log)
    progress.update()
    progress.close()
    assert log.getvalue() == ""


def test_a_resumed_run_counts_from_where_it_left():
    log = io.StringIO()
    progress = StepProgress(total=100, initial=90, every=5, stream=log)
    for _ in range(10):
        progress.update()
    assert log.getvalue().splitlines()[0].startswith("train: step 95/100")


def test_about_twenty_lines_a_run():
    assert (default_every(900), default_every(2200), default_every(7)) == (45, 50, 1)
