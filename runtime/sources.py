"""Where frames come from for ``predict --source``: an image, a folder or glob, a video file, a camera, a stream.

``open_source(spec)`` returns what it found (``SourceInfo``) and an iterator of ``Frame``s. Image files
are handed on as paths, so the Predictor's stream workers decode them in parallel (and at reduced scale
for large JPEGs); video frames are decoded by PyAV (the FFmpeg binding, extra ``[video]``) on a reader
thread of their own, a bounded queue ahead of inference, so decoding frame n+1 overlaps inferring frame n.
A source that cannot be opened is a ``SourceError`` (one line); a live stream that sends nothing for
``timeout`` seconds ends with a ``SourceError`` saying so; a stream that drops mid-way ends cleanly.
"""

from __future__ import annotations

import glob
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClipGuardError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
VIDEO_HINT = "pip install 'edge-clipguard[video]' (PyAV)"


class SourceError(ClipGuardError):
    """A source cannot be opened or read, or a live stream stalled."""


@dataclass(frozen=True)
class Frame:
    """One picture of a source. ``image`` is a Path (decoded later by the Predictor) or an HxWx3 uint8 array."""

    source: str
    index: int
    timestamp: float | None
    image: object


@dataclass(frozen=True)
class SourceInfo:
    """kind: image | folder | video | camera | stream; fps/size/frames when the source tells them."""

    kind: str
    name: str
    fps: float | None = None
    size: tuple[int, int] | None = None
    frames: int | None = None


def image_files(spec: str) -> list[Path]:
    """Sorted image files of a folder, or of a glob pattern such as ``shots/*.jpg``."""
    path = Path(spec)
    candidates = sorted(path.iterdir()) if path.is_dir() else sorted(Path(p) for p in glob.glob(spec))
    return [p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]


def _import_av():
    try:
        import av
    except ImportError:
        raise SourceError(f"video sources need PyAV: {VIDEO_HINT}") from None
    return av


def _open_container(av, url: str, kind: str, timeout: float):
    options, fmt = {}, None
    if kind == "camera":
        fmt = {"linux": "v4l2", "darwin": "avfoundation"}.get(sys.platform, "dshow")
        url = {"v4l2": f"/dev/video{url}", "dshow": f"video={url}"}.get(fmt, url)
    if url.startswith("rtsp://"):
        options["rtsp_transport"] = "tcp"
    try:
        return av.open(url, format=fmt, options=options, timeout=(timeout, timeout))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"{url}: cannot open the {kind} ({str(exc).splitlines()[0][:200]})") from None


def _video_frames(av, container, name: str) -> Iterator[Frame]:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # FFmpeg's own frame threads
    try:
        for index, frame in enumerate(container.decode(stream)):
            yield Frame(name, index, None if frame.time is None else float(frame.time),
                        frame.to_ndarray(format="rgb24"))
    except av.error.FFmpegError as exc:  # a stream that drops mid-way: end it, say why
        print(f"edge-clipguard: warning: {name}: stream ended early ({str(exc).splitlines()[0][:200]})",
              file=sys.stderr)
    finally:
        container.close()


def read_ahead(frames: Iterator[Frame], size: int, timeout: float | None, name: str) -> Iterator[Frame]:
    """Iterate ``frames`` on a reader thread, at most ``size`` frames ahead; a gap longer than ``timeout``
    seconds ends the iteration with a SourceError. Errors of the reader are raised here."""
    items: queue.Queue = queue.Queue(maxsize=size)
    done, stop = object(), threading.Event()

    def offer(item) -> bool:
        """Put ``item`` when there is room; False once the consumer has left (never blocks past that)."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader():
        try:
            for frame in frames:
                if not offer(frame):
                    return
            offer(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            offer(exc)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:  # the source's own cleanup (a video container, a camera) runs now
                close()

    thread = threading.Thread(target=reader, name=f"clipguard-source-{name}", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=timeout)
            except queue.Empty:
                raise SourceError(f"{name}: no frame for {timeout:g} s (stream stalled); stopped") from None
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def classify(spec: str) -> str:
    """image | folder | video | camera | stream, from the spec alone."""
    lower = spec.lower()
    if lower.startswith(STREAM_SCHEMES):
        return "stream"
    if spec.isdigit():
        return "camera"
    path = Path(spec)
    if path.is_dir() or any(ch in spec for ch in "*?["):
        return "folder"
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    return "image"


def open_source(spec: str, timeout: float = 10.0, read_ahead_frames: int = 16) -> tuple[SourceInfo, Iterator[Frame]]:
    """What ``spec`` is, and its frames (see the module docstring)."""
    kind = classify(spec)
    if kind == "image":
        if not Path(spec).is_file():
            raise SourceError(f"{spec}: no such file (expected an image, a folder, a glob, a video, a camera "
                              "index or an rtsp:// / http:// URL)")
        return SourceInfo("image", spec, frames=1), iter([Frame(spec, 0, None, Path(spec))])
    if kind == "folder":
        files = image_files(spec)
        if not files:
            raise SourceError(f"{spec}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found there")
        return SourceInfo("folder", spec, frames=len(files)), (Frame(str(f), i, None, f) for i, f in enumerate(files))
    if kind == "video" and not Path(spec).is_file():
        raise SourceError(f"{spec}: no such video file")
    av = _import_av()
    container = _open_container(av, spec, kind, timeout)
    if not container.streams.video:
        container.close()
        raise SourceError(f"{spec}: has no video stream")
    stream = container.streams.video[0]
    fps = float(stream.average_rate) if stream.average_rate else None
    info = SourceInfo(kind, spec, fps, (stream.codec_context.width, stream.codec_context.height),
                      stream.frames or None)
    live_timeout = timeout if kind in ("camera", "stream") else None
    return info, read_ahead(_video_frames(av, container, spec), read_ahead_frames, live_timeout, spec)
