"""Atomic file and directory writes: readers never see a half-written output.

Everything is written next to its final place under a temporary name, then renamed.
``os.replace`` is atomic on POSIX when source and target are on one filesystem.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    """The process umask, read without changing it (Linux reports it in /proc since 4.7). Setting it to read it
    back, the only portable way, briefly changes it for every thread of the process: the last resort here."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE): readers see the old or the new entry at each
    name, never none. False where the platform or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _normal_mode(path: Path, is_dir: bool) -> None:
    """mkstemp/mkdtemp create owner-only entries; give the result the usual umask permissions."""
    path.chmod((0o777 if is_dir else 0o666) & ~_umask())


def _fsync(path: Path, is_dir: bool) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if is_dir else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    A killed process (even SIGKILL) leaves the old file or the new one. ``durable`` also survives a
    power cut: the data is fsynced before the rename and the folder after it (training checkpoints).
    ``mode`` (e.g. 0o600 for a private key) replaces the usual umask permissions; the temporary file is
    created owner-only, so a file given a narrower mode is never readable by others at any moment."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            if mode is None:
                _normal_mode(tmp, is_dir=False)
            else:
                tmp.chmod(mode)
            if durable:
                _fsync(tmp, is_dir=False)
        os.replace(tmp, final)
        if durable and os.name == "posix":
            _fsync(final.parent, is_dir=True)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path (``mode``: see ``atomic_path``)."""
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary sibling name; move it into place on success.

    An existing directory at ``path`` is replaced only after the new one is complete, by swapping the two in one
    step where the OS can (Linux), so ``path`` is never missing, even to a concurrent reader or writer;
    elsewhere it is renamed away just before the new one is renamed in.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        _normal_mode(tmp, is_dir=True)
        if final.is_dir() and _exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # now the old directory
        elif final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
