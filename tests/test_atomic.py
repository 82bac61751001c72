"""Atomic writes: a reader sees the old output or the new one, never none and never half of one."""

from __future__ import annotations

import os
import threading

import pytest

from edge_clipguard.atomic import atomic_directory, write_text_atomic


def test_writing_never_changes_the_process_umask(tmp_path, monkeypatch):
    def refuse(_mask):
        raise AssertionError("os.umask called: it changes the mask of every thread")

    if not os.path.exists("/proc/self/status"):
        pytest.skip("the umask is readable without setting it only on Linux")
    monkeypatch.setattr(os, "umask", refuse)
    write_text_atomic(tmp_path / "file.txt", "x")
    with atomic_directory(tmp_path / "folder") as folder:
        (folder / "a").write_text("1")
    assert (tmp_path / "folder" / "a").read_text() == "1"


def test_a_replaced_directory_is_never_missing_to_a_concurrent_reader(tmp_path):
    out = tmp_path / "bundle"
    with atomic_directory(out) as folder:
        (folder / "manifest.json").write_text("0")
    missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not (out / "manifest.json").is_file():
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(1, 200):
            with atomic_directory(out) as folder:
                (folder / "manifest.json").write_text(str(i))
    finally:
        stop.set()
        watcher.join()
    assert (out / "manifest.json").read_text() == "199"
    assert missing == [] and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
