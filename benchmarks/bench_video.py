"""Frames per second of ``predict --source VIDEO`` (the batched, pipelined stream path) at 320x240 and 1280x720.

    python benchmarks/bench_video.py BUNDLE --scenes TEST.jsonl --frames 120 --batch 1,8 --tag demo

Each video is made here from held-out scene pictures (H.264 where FFmpeg has it), then read by
``runtime.sources.open_source`` (PyAV on a reader thread) and run through ``predict_source.run`` with no
sink, exactly what ``predict --source`` does. Rows: resolution x batch size x precision, with the CPU
model printed; JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.data.text_refs import load_manifest  # noqa: E402
from edge_clipguard.runtime import Predictor  # noqa: E402
from edge_clipguard.runtime.predict_source import run, source_jobs  # noqa: E402
from edge_clipguard.runtime.profile import cpu_model  # noqa: E402
from edge_clipguard.runtime.sources import open_source  # noqa: E402

SIZES = ((320, 240), (1280, 720))


def make_video(path: Path, size: tuple[int, int], pictures: list[str], frames: int, fps: int = 25) -> Path:
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    for i in range(frames):
        picture = Image.open(pictures[i % len(pictures)]).convert("RGB").resize(size, Image.BILINEAR)
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--scenes", required=True, help="manifest whose pictures make the videos")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--precision", default="int8,fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="run")
    args = parser.parse_args(argv)
    rows = [r for r in load_manifest(args.scenes) if r.image][:24]
    text = rows[0].text
    table, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {size: make_video(Path(tmp) / f"{size[0]}x{size[1]}.mp4", size, [r.image for r in rows], args.frames)
                  for size in SIZES}
        for precision in args.precision.split(","):
            with Predictor.load(args.bundle, device="cpu", precision=precision, threads=args.threads) as predictor:
                for size, video in videos.items():
                    for batch in (int(b) for b in args.batch.split(",")):
                        _, warm = open_source(str(video))
                        run(predictor, source_jobs(warm, [text]), [], batch_size=batch, quiet=True)  # warm-up
                        info, frames = open_source(str(video))
                        summary = run(predictor, source_jobs(frames, [text]), [], info.frames, batch, quiet=True)
                        row = {"video": f"{size[0]}x{size[1]}", "batch": batch, "precision": precision,
                               "artifact": predictor.describe(), "frames": summary.frames,
                               "seconds": summary.seconds, "fps": summary.fps, "errors": summary.errors}
                        results.append(row)
                        table.append([row["video"], batch, precision, predictor.backend, summary.frames,
                                      summary.seconds, summary.fps])
                        print(f"{row['video']} batch {batch} {precision}: {summary.fps:.1f} fps", file=sys.stderr)
    print(f"CPU: {cpu_model()}, {args.threads} threads; predict --source VIDEO path, text against every frame")
    print(C.table(["video", "batch", "precision", "backend", "frames", "seconds", "fps"], table))
    out = C.RESULTS_DIR / f"bench_video_{args.tag}.json"
    C.write_json(out, {"cpu_model": cpu_model(), "environment": C.environment(), "args": vars(args), "rows": results})
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
