"""``predict --source``: every frame of a source, against one or more texts, through ``predict_stream``.

Frames x texts become (text, image) pairs in order; ``predict_stream`` batches them and overlaps the
decoding of the next frames with inference; each result goes to every sink (JSONL, drawing, COCO results)
as it comes. A bad frame becomes an error line, never a traceback; Ctrl-C stops the run cleanly (the sinks
are closed, so what ran is written). Progress (frames, fps) goes to stderr unless ``quiet``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import iter_jsonl
from .sources import Frame, SourceError


@dataclass(frozen=True)
class RunSummary:
    frames: int
    items: int
    errors: int
    seconds: float
    interrupted: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def read_texts(path: str | Path) -> list[str]:
    """One query text per non-empty line of a UTF-8 file."""
    path = Path(path)
    try:
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the texts file ({exc})") from None
    if not texts:
        raise SourceError(f"{path}: no texts (expected one per line)")
    return texts


def read_pairs(path: str | Path) -> list[tuple[str, Path]]:
    """(text, image) pairs from a JSONL file of {"text": ..., "image": ...} rows (image relative to the file)."""
    path = Path(path)
    pairs = []
    for where, row in iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(row.get("image"), str):
            raise SourceError(f"{where}: expected {{\"text\": str, \"image\": path}}")
        image = Path(row["image"])
        pairs.append((row["text"], image if image.is_absolute() else path.parent / image))
    if not pairs:
        raise SourceError(f"{path}: no (text, image) rows")
    return pairs


class Progress:
    """``<n>[/<total>] frames, <fps> fps`` on stderr: on a terminal one line redrawn at most twice a second; in a
    log file (stderr not a terminal) a plain line every 10 s, so a log holds lines, not carriage returns."""

    def __init__(self, total: int | None, quiet: bool):
        self.total, self.quiet = total, quiet
        self.started = self.last = time.perf_counter()
        self.terminal = sys.stderr.isatty() if hasattr(sys.stderr, "isatty") else False

    def update(self, frames: int, force: bool = False) -> None:
        now = time.perf_counter()
        if self.quiet or (not force and now - self.last < (0.5 if self.terminal else 10.0)):
            return
        self.last = now
        fps = frames / (now - self.started) if now > self.started else 0.0
        of = f"/{self.total}" if self.total else ""
        line = f"{frames}{of} frames, {fps:.1f} fps"
        if self.terminal:
            print(f"\r{line}", end="\n" if force else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


Job = tuple[Frame, str]


def source_jobs(frames: Iterator[Frame], texts: list[str]) -> Iterator[Job]:
    """Every frame against every text, frame by frame."""
    return ((frame, text) for frame in frames for text in texts)


def pair_jobs(pairs: list[tuple[str, Path]]) -> Iterator[Job]:
    """Rows of a pairs file, each its own frame with its own text."""
    return ((Frame(str(image), index, None, image), text) for index, (text, image) in enumerate(pairs))


class Interrupts:
    """SIGTERM (a service manager stopping the app, ``kill``) and Ctrl-C end a run the same way, and never halfway
    through handing one result to the sinks: a signal that arrives while a result is being written is held until
    every sink has it, so the JSONL and the video hold the same frames. Installed only in the main thread (where
    Python runs signal handlers); the previous handlers come back afterwards."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.writing = False
        self.pending = False
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.writing:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    @contextlib.contextmanager
    def writing_one(self):
        """The hand-over of one result to every sink, which a signal does not cut."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending:
            raise KeyboardInterrupt


def run(predictor, jobs: Iterator[Job], sinks: list, total: int | None = None, batch_size: int = 8,
        workers: int = 2, quiet: bool = False) -> RunSummary:
    """Predict every (frame, text) job and hand each result to every sink; see the module docstring."""
    meta: dict[int, Job] = {}

    def pairs():
        for index, (frame, text) in enumerate(jobs):
            meta[index] = (frame, text)
            yield text, frame.image

    progress = Progress(total, quiet)
    frames = items = errors = 0
    last_frame = None
    interrupted = False
    started = time.perf_counter()
    try:
        with Interrupts() as interrupts:
            for item in predictor.predict_stream(pairs(), batch_size=batch_size, workers=workers):
                frame, text = meta.pop(item.index)
                items += 1
                errors += not item.ok
                with interrupts.writing_one():
                    for sink in sinks:
                        sink.write(frame, text, item.result, item.error)
                    if (frame.source, frame.index) != last_frame:
                        last_frame = (frame.source, frame.index)
                        frames += 1
                        progress.update(frames)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for sink in sinks:
            sink.close()
        progress.update(frames, force=True)
    return RunSummary(frames, items, errors, time.perf_counter() - started, interrupted)
