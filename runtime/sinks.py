"""Where ``predict --source`` results go: JSONL lines, annotated pictures or video, COCO results.

- ``JsonlSink``: one line per (frame, text), written whole and flushed, so a live run can be tailed.
  A frame that failed is a line with ``error`` instead of a score.
- ``DrawSink``: the query text, score and boxes drawn on the frame; an image source gives one picture,
  a folder a folder of pictures (same names), a video, camera or stream an annotated video (same size,
  the source's fps) encoded by PyAV. Pictures are written atomically; the video is encoded under a
  temporary name and renamed once the encoder is flushed and closed (also after Ctrl-C, so what ran is
  a playable video), never a half file under the name asked for.
- ``CocoResultsSink``: detections in the COCO results format (``image_id``, ``category_id``, ``bbox``
  as x, y, w, h, ``score``), written atomically at the end. ``image_id`` is the file name's number when
  it is one (COCO's ``000000397133.jpg``), else the image's position in the folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import write_text_atomic
from ..image_io import load_image
from .draw import draw_result, save_image_atomic
from .results import Result
from .sources import VIDEO_HINT, Frame, SourceError, SourceInfo


def frame_record(frame: Frame, text: str, result: Result | None, error: str | None) -> dict:
    """The JSON object of one (frame, text): boxes in the frame's original pixels."""
    record = {"source": frame.source, "frame": frame.index, "timestamp": frame.timestamp, "text": text}
    if error is not None:
        return {**record, "error": error}
    data = result.to_dict()
    return {**record, "score": data["score"], "detections": data["detections"], "image_size": data["image_size"],
            "text_truncated": data["text_truncated"]}


class JsonlSink:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", encoding="utf-8")

    def write(self, frame: Frame, text: str, result: Result | None, error: str | None) -> None:
        self._handle.write(json.dumps(frame_record(frame, text, result, error), ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _pixels(frame: Frame) -> Image.Image:
    return load_image(frame.image) if isinstance(frame.image, (str, Path)) else Image.fromarray(frame.image)


class _VideoWriter:
    """H.264 (or MPEG-4 where FFmpeg lacks libx264) at the source's size and fps, via PyAV."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float | None):
        try:
            import av
        except ImportError:
            raise SourceError(f"--draw to a video needs PyAV: {VIDEO_HINT}") from None
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".mp4", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.av = av
        try:
            self.container = av.open(str(self.tmp), mode="w")
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=round(fps or 25))
            self.stream.width, self.stream.height = (v - v % 2 for v in size)  # yuv420p needs even sides
            self.stream.pix_fmt = "yuv420p"
        except Exception as exc:
            self.tmp.unlink(missing_ok=True)
            raise SourceError(f"{path}: cannot write a video there ({str(exc).splitlines()[0][:200]})") from None

    def write(self, picture: Image.Image) -> None:
        picture = picture.crop((0, 0, self.stream.width, self.stream.height))
        frame = self.av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush and move the video into place; a failed encode leaves no temporary file behind."""
        try:
            try:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            finally:
                self.container.close()
            os.replace(self.tmp, self.path)
        except Exception as exc:
            self.tmp.unlink(missing_ok=True)
            raise SourceError(f"{self.path}: video encoding failed ({str(exc).splitlines()[0][:200]})") from None


class DrawSink:
    """Draws the results of one text (``text``: the first of several, so each frame is drawn once).

    Pictures of an image or a folder are decoded at full size (the Predictor decoded them at the reduced scale
    its input needs), drawn and saved on a worker thread, so the main thread keeps feeding inference; ``close``
    waits for them. Video frames are arrays already and go to the encoder in order."""

    def __init__(self, path: str | Path, info: SourceInfo, text: str | None = None, workers: int = 2):
        self.path = Path(path)
        self.info = info
        self.text = text
        self._video: _VideoWriter | None = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="clipguard-draw") \
            if info.kind in ("image", "folder") else None
        self._pending: list[Future] = []

    def write(self, frame: Frame, text: str, result: Result | None, error: str | None) -> None:
        if result is None or (self.text is not None and text != self.text):
            return
        if self._pool is not None:
            self._pending = [f for f in self._pending if not f.done() or f.exception()]
            self._pending.append(self._pool.submit(self._save_picture, frame, result, text))
            return
        picture = draw_result(_pixels(frame), result, text)
        if self._video is None:
            self._video = _VideoWriter(self.path, picture.size, self.info.fps)
        self._video.write(picture)

    def _save_picture(self, frame: Frame, result: Result, text: str) -> None:
        picture = draw_result(_pixels(frame), result, text)
        if self.info.kind == "image":
            save_image_atomic(picture, self.path)
        else:
            name = Path(frame.source).name
            save_image_atomic(picture, self.path / (name if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png")
                                                    else Path(name).stem + ".png"))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # every picture written, even after Ctrl-C
            for future in self._pending:
                future.result()  # a failed save raises here, once all the others are done
        if self._video is not None:  # finished properly even after Ctrl-C: a playable video of what ran
            self._video.close()


class CocoResultsSink:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.results: list[dict] = []

    def write(self, frame: Frame, text: str, result: Result | None, error: str | None) -> None:
        if result is None:
            return
        stem = Path(frame.source).stem
        image_id = int(stem) if stem.isdigit() else frame.index
        for det in result.detections:
            x1, y1, x2, y2 = det.box
            self.results.append({"image_id": image_id, "category_id": det.label,
                                 "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                                 "score": round(det.confidence, 5)})

    def close(self) -> None:
        write_text_atomic(self.path, json.dumps(self.results) + "\n")
