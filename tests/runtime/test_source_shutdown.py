"""predict --source ends cleanly: SIGTERM finishes the outputs as Ctrl-C does, and a failed video encode leaves
no temporary file (tiny bundle, real PyAV)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edge_clipguard.runtime.sources import SourceError

av = pytest.importorskip("av")


def _write_video(path, frames: int) -> None:
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for i in range(frames):
        frame = np.full((48, 64, 3), i % 250, dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def test_sigterm_ends_a_video_run_with_complete_outputs(tiny_bundle, tmp_path):
    clip, jsonl, drawn = tmp_path / "long.mp4", tmp_path / "out.jsonl", tmp_path / "drawn.mp4"
    _write_video(clip, 3000)
    proc = subprocess.Popen([sys.executable, "-m", "edge_clipguard.cli", "predict", str(tiny_bundle), "--text",
                             "a star", "--source", str(clip), "--jsonl", str(jsonl), "--draw", str(drawn),
                             "--batch", "1", "--backend", "onnxruntime", "--device", "cpu", "--threads", "1",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "interrupted" in out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert 5 <= len(lines) < 3000
    container = av.open(str(drawn))
    assert sum(1 for _ in container.decode(video=0)) == len(lines)  # playable, a frame per result
    container.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawn.mp4", "long.mp4", "out.jsonl"]


def test_a_failed_video_encode_leaves_no_temporary_file(tmp_path):
    from PIL import Image

    from edge_clipguard.runtime.sinks import _VideoWriter

    writer = _VideoWriter(tmp_path / "out.mp4", (64, 48), 25)
    writer.write(Image.new("RGB", (64, 48)))

    writer.container = _Failing(writer.container)
    with pytest.raises(SourceError, match=r"out.mp4: video encoding failed"):
        writer.close()
    assert os.listdir(tmp_path) == []


class _Failing:
    """A container whose mux fails (what a full disk or a broken encoder does), closing the real one."""

    def __init__(self, real):
        self.real = real

    def mux(self, packet):
        raise OSError("No space left on device")

    def close(self):
        self.real.close()


def test_a_video_that_cannot_be_opened_for_writing_leaves_no_temporary_file(tmp_path):
    from edge_clipguard.runtime.sinks import _VideoWriter

    with pytest.raises(SourceError, match=r"cannot write a video there"):
        _VideoWriter(tmp_path / "out.notavideoformat", (64, 48), 25)
    assert os.listdir(tmp_path) == []


def test_a_signal_during_a_hand_over_to_the_sinks_waits_until_every_sink_has_it():
    from edge_clipguard.runtime.predict_source import Interrupts

    before = signal.getsignal(signal.SIGTERM)
    handed = []
    with pytest.raises(KeyboardInterrupt):
        with Interrupts() as interrupts:
            with interrupts.writing_one():
                os.kill(os.getpid(), signal.SIGTERM)  # arrives between the two sinks
                handed.append("jsonl")
                handed.append("video")
    assert handed == ["jsonl", "video"] and signal.getsignal(signal.SIGTERM) is before
