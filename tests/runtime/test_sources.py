"""predict --source: what each kind of source yields, and what the sinks write (tiny bundle, real PyAV)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.cli import main
from edge_clipguard.runtime.sources import SourceError, classify, open_source, read_ahead


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("shots")
    rng = np.random.default_rng(3)
    for name, (h, w) in (("b.png", (40, 60)), ("a.jpg", (50, 30)), ("c.png", (33, 33))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=5)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for i in range(7):
        frame = np.full((48, 64, 3), i * 30, dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.mark.parametrize("spec, kind", [("rtsp://cam/1", "stream"), ("0", "camera"), ("x/*.jpg", "folder"),
                                        ("clip.MP4", "video"), ("photo.jpg", "image")])
def test_source_kind_follows_the_spec(spec, kind):
    assert classify(spec) == kind


def test_folder_yields_its_images_sorted_as_paths(folder):
    info, frames = open_source(str(folder))
    assert (info.kind, info.frames) == ("folder", 3)
    assert [f.image.name for f in frames] == ["a.jpg", "b.png", "c.png"]


def test_glob_keeps_only_matching_images(folder):
    _, frames = open_source(str(folder / "*.png"))
    assert [f.image.name for f in frames] == ["b.png", "c.png"]


def test_video_yields_rgb_frames_with_timestamps(video):
    info, frames = open_source(str(video))
    frames = list(frames)
    assert (info.kind, info.size, round(info.fps)) == ("video", (64, 48), 5)
    assert len(frames) == 7 and frames[0].image.shape == (48, 64, 3)
    assert [f.index for f in frames] == list(range(7)) and frames[2].timestamp == pytest.approx(0.4)


def test_missing_source_is_a_one_line_error(tmp_path):
    with pytest.raises(SourceError, match=r"no such file \(expected an image, a folder"):
        open_source(str(tmp_path / "nope.jpg"))


def test_unreadable_video_is_a_source_error(tmp_path):
    pytest.importorskip("av")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match=r"bad\.mp4: cannot open the video"):
        open_source(str(bad))


def test_a_stalled_stream_ends_with_a_message():
    def slow():
        yield "first"
        time.sleep(5)
        yield "never"

    frames = read_ahead(slow(), size=2, timeout=0.3, name="rtsp://cam")
    assert next(frames) == "first"
    with pytest.raises(SourceError, match=r"rtsp://cam: no frame for 0\.3 s \(stream stalled\)"):
        next(frames)


def _predict(bundle, *argv):
    return main(["predict", str(bundle), "--backend", "onnxruntime", "--device", "cpu", "--threads", "1", "--quiet",
                 *map(str, argv)])


def test_folder_to_jsonl_writes_a_line_per_image_and_an_error_line_for_a_corrupt_one(tiny_bundle, folder, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    for f in folder.iterdir():
        (shots / f.name).write_bytes(f.read_bytes())
    (shots / "d.jpg").write_bytes(b"\xff\xd8 broken")
    out = tmp_path / "out.jsonl"
    assert _predict(tiny_bundle, "--text", "About the stars: ok", "--source", shots, "--jsonl", out) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 3]
    assert "score" in lines[0] and "error" in lines[3] and lines[3]["source"].endswith("d.jpg")


def test_several_texts_give_a_line_per_frame_and_text(tiny_bundle, folder, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("About the stars: ok\n\nAbout the rings: bad\n")
    out = tmp_path / "out.jsonl"
    assert _predict(tiny_bundle, "--texts", texts, "--source", folder, "--jsonl", out) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["frame"], line["text"][10:15]) for line in lines] == [
        (0, "stars"), (0, "rings"), (1, "stars"), (1, "rings"), (2, "stars"), (2, "rings")]


def test_pairs_jsonl_scores_each_row_with_its_own_text(tiny_bundle, folder, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"text": "About the stars: ok", "image": str(folder / "a.jpg")}) + "\n"
                     + json.dumps({"text": "About the rings: no", "image": str(folder / "c.png")}) + "\n")
    out = tmp_path / "out.jsonl"
    assert _predict(tiny_bundle, "--texts", pairs, "--jsonl", out) == 0
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == ["About the stars: ok",
                                                                                    "About the rings: no"]


def test_video_draw_writes_a_video_of_the_same_size_and_frame_count(tiny_bundle, video, tmp_path):
    import av

    out = tmp_path / "drawn.mp4"
    assert _predict(tiny_bundle, "--text", "About the stars: ok", "--source", video, "--draw", out,
                    "--batch", "3") == 0
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert (stream.codec_context.width, stream.codec_context.height, len(frames)) == (64, 48, 7)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_coco_results_use_xywh_boxes_and_folder_positions(tiny_bundle, folder, tmp_path):
    out = tmp_path / "results.json"
    assert _predict(tiny_bundle, "--text", "About the stars: ok", "--source", folder, "--coco-results", out,
                    "--min-confidence", "0") == 0
    results = json.loads(out.read_text())
    assert {r["image_id"] for r in results} == {0, 1, 2}
    assert all(len(r["bbox"]) == 4 and r["bbox"][2] >= 0 and 0 <= r["score"] <= 1 for r in results)


def test_source_mode_needs_exactly_one_of_text_and_texts(tiny_bundle, folder, capsys):
    assert _predict(tiny_bundle, "--source", folder) == 2
    assert "exactly one of --text and --texts" in capsys.readouterr().err


def test_the_reader_thread_ends_when_the_consumer_leaves():
    import threading

    closed = threading.Event()

    def source():
        try:
            yield from range(2)  # the reader fills the one-slot queue, then waits to say "done"
        finally:
            closed.set()

    frames = read_ahead(source(), size=1, timeout=5.0, name="leaving")
    assert next(frames) == 0
    time.sleep(0.3)
    frames.close()  # the consumer leaves with a frame and "done" still to hand over
    reader = [t for t in threading.enumerate() if t.name == "clipguard-source-leaving"]
    for thread in reader:
        thread.join(timeout=3.0)
    assert not any(t.is_alive() for t in reader) and closed.is_set()


def test_folder_pictures_are_drawn_off_the_main_thread_and_all_written(tiny_bundle, folder, tmp_path, monkeypatch):
    import threading

    from edge_clipguard.runtime import sinks

    threads = []
    real = sinks.draw_result
    monkeypatch.setattr(sinks, "draw_result", lambda *a: threads.append(threading.current_thread().name) or real(*a))
    out = tmp_path / "drawn"
    assert _predict(tiny_bundle, "--text", "a star", "--source", folder, "--draw", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png", "c.png"]
    assert len(threads) == 3 and all(name.startswith("clipguard-draw") for name in threads)
