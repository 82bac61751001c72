"""``predict``, ``profile`` and ``serve`` subcommands: thin argparse wrappers over the runtime library.

``register(commands)`` adds them to the CLI's subparsers, as every command family does; each sets
``handler``. Handlers raise ClipGuardError subclasses for anything the user can fix, which the CLI
prints as one line (exit 2). No torch import unless ``profile --compare-torch`` is given; PyTriton only
inside ``serve``.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..bundle import PRECISIONS, parse_precisions
from .decode import DEFAULT_MIN_CONFIDENCE, DEFAULT_NMS_IOU
from .profile_types import PROFILE_BACKENDS
from .selection import BACKENDS, DEVICES
from .sources import SourceError


def _warn(message: str) -> None:
    print(f"edge-clipguard: warning: {message}", file=sys.stderr)


def format_result(result, header: str) -> str:
    """Human-readable result: score line, then one row per detection."""
    lines = [header, f"score: {result.score:.3f} / 10", f"detections: {len(result.detections)} "
             f"(image {result.image_size[0]}x{result.image_size[1]}, boxes x1,y1,x2,y2 in its pixels)"]
    if result.detections:
        lines.append(f"  {'#':>2}  {'class':<12}{'conf':>6}  {'x1':>7} {'y1':>7} {'x2':>7} {'y2':>7}")
        for i, det in enumerate(result.detections, 1):
            x1, y1, x2, y2 = det.box
            lines.append(f"  {i:>2}  {det.class_name:<12}{det.confidence:>6.3f}  {x1:>7.1f} {y1:>7.1f} {x2:>7.1f} "
                         f"{y2:>7.1f}")
    return "\n".join(lines)


def _source_mode(args: argparse.Namespace) -> bool:
    return bool(args.source or args.texts or args.jsonl or args.coco_results)


def run_predict(args: argparse.Namespace) -> None:
    from .predictor import Predictor

    if _source_mode(args):
        return run_predict_source(args)
    if args.text is None or args.image is None:
        raise SourceError("predict: give --text and --image, or --source (with --text or --texts)")
    with _load(Predictor, args) as predictor:
        # The path goes to the Predictor, so the CLI's image path is the API's: a large JPEG is decoded at the
        # reduced scale that still covers the model's input (DCT scaling), not at full size first.
        result = predictor.predict(args.text, args.image)
        header = f"bundle: {args.bundle}  artifact: {predictor.describe()}"
        max_tokens = predictor.manifest.preprocess.max_text_length
    if result.text_truncated:
        _warn(f"text is longer than the model's {max_tokens} tokens; it was truncated (score is for the kept part)")
    if args.draw:  # the picture is drawn at the image's own size, so only --draw decodes it in full
        from ..image_io import load_image
        from .draw import draw_result, save_image_atomic

        save_image_atomic(draw_result(load_image(args.image), result, args.text), args.draw)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_result(result, header))
        if args.draw:
            print(f"drawn: {args.draw}")


def _load(predictor_cls, args: argparse.Namespace):
    predictor = predictor_cls.load(args.bundle, backend=args.backend, device=args.device, precision=args.precision,
                                   threads=args.threads, min_confidence=args.min_confidence, nms_iou=args.nms_iou,
                                   verify_key=args.verify_key, compile_cache=args.compile_cache)
    if predictor.advice:
        _warn(predictor.advice)
    return predictor


def run_predict_source(args: argparse.Namespace) -> None:
    """--source / --texts: frames x texts through predict_stream into --jsonl / --draw / --coco-results."""
    from . import predict_source as ps
    from .predictor import Predictor
    from .sinks import CocoResultsSink, DrawSink, JsonlSink
    from .sources import SourceInfo, open_source

    if (args.text is None) == (args.texts is None):
        raise SourceError("predict: give exactly one of --text and --texts")
    if args.texts and args.texts.endswith(".jsonl"):
        if args.source or args.image:
            raise SourceError(f"{args.texts}: a JSONL of (text, image) pairs brings its own images; drop --source")
        pairs = ps.read_pairs(args.texts)
        info, jobs, first_text = SourceInfo("folder", args.texts, frames=len(pairs)), ps.pair_jobs(pairs), None
    else:
        spec = args.source or args.image
        if spec is None:
            raise SourceError("predict: give --source (an image, folder, glob, video, camera index or URL)")
        texts = [args.text] if args.text is not None else ps.read_texts(args.texts)
        info, frames = open_source(spec, timeout=args.timeout)
        jobs, first_text = ps.source_jobs(frames, texts), texts[0]
    with _load(Predictor, args) as predictor:
        if not args.quiet:
            print(f"source: {info.kind} {info.name}" + (f", {info.size[0]}x{info.size[1]}" if info.size else "")
                  + (f" at {info.fps:.1f} fps" if info.fps else "") + f"; artifact: {predictor.describe()}",
                  file=sys.stderr)
        sinks = ([JsonlSink(args.jsonl)] if args.jsonl else []) + \
                ([DrawSink(args.draw, info, first_text)] if args.draw else []) + \
                ([CocoResultsSink(args.coco_results)] if args.coco_results else [])
        summary = ps.run(predictor, jobs, sinks, info.frames, args.batch, args.workers, args.quiet)
    written = ", ".join(str(p) for p in (args.jsonl, args.draw, args.coco_results) if p)
    print(f"{summary.frames} frames, {summary.items} predictions ({summary.errors} errors) in {summary.seconds:.1f} s "
          f"({summary.fps:.1f} fps)" + (f"; wrote {written}" if written else "")
          + ("; interrupted" if summary.interrupted else ""))


def run_profile(args: argparse.Namespace) -> None:
    from ..signing import verify_bundle
    from .errors import ProfileError
    from .profile import parse_batch_sizes, profile_bundle
    from .profile_report import format_table, write_json, write_plot
    from .profile_types import ProfileRequest

    if args.verify_key:
        verify_bundle(args.bundle, args.verify_key)

    if args.layers < 0:
        raise ProfileError(f"--layers: expected how many kernels to list (>= 1), got {args.layers}")
    req = ProfileRequest(bundle=args.bundle, backend=args.backend, device=args.device,
                         precisions=parse_precisions(args.precision), batch_sizes=parse_batch_sizes(args.batch),
                         iters=args.iters, warmup=args.warmup, threads=args.threads, compare_torch=args.compare_torch,
                         torch_compile=args.compile, stream=args.stream, startup=args.startup,
                         verify_key=args.verify_key, compile_cache=args.compile_cache, layers=args.layers)
    verbose = getattr(args, "verbose", False)  # SUPPRESS default: absent unless -v was given somewhere
    report = profile_bundle(req, log=lambda msg: print(msg, file=sys.stderr) if verbose else None)
    print(format_table(report))
    if args.json:
        print(f"json: {write_json(report, args.json)}")
    if args.plot:
        print(write_plot(report, args.plot))


def run_serve(args: argparse.Namespace) -> None:
    if args.write_repo:
        from .triton_repo import write_triton_repo

        if args.verify_key:  # the signature first, then each copied file's sha256 against the manifest
            from ..signing import verify_bundle

            verify_bundle(args.bundle, args.verify_key)
        written = write_triton_repo(args.bundle, args.write_repo, max_batch=args.max_batch,
                                    max_queue_delay_us=args.max_queue_delay_us, instances=args.instances)
        for name, file in written:
            print(f"{name}: {file}")
        print(f"Triton model repository: {args.write_repo} ({len(written)} models); "
              f"tritonserver --model-repository {args.write_repo}")
        return
    from .serve import ServeConfig, serve

    serve(ServeConfig(bundle=args.bundle, host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                      metrics_port=args.metrics_port, max_batch=args.max_batch,
                      max_queue_delay_us=args.max_queue_delay_us, dynamic_batching=args.dynamic_batching,
                      instances=args.instances, backend=args.backend, device=args.device, precision=args.precision,
                      threads=args.threads, min_confidence=args.min_confidence, nms_iou=args.nms_iou,
                      verify_key=args.verify_key, compile_cache=args.compile_cache, model_name=args.model_name,
                      drain_timeout_s=args.drain_timeout))


def _add_common(parser: argparse.ArgumentParser, backends: tuple[str, ...]) -> None:
    parser.add_argument("bundle", help="bundle directory written by 'edge-clipguard export'")
    parser.add_argument("--backend", choices=backends, default="auto", help="inference backend (default: auto)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime (default: all CPUs)")
    parser.add_argument("--verify-key", default=None, metavar="PUB",
                        help="public key PEM: refuse the bundle unless its signature verifies (nothing is loaded)")
    parser.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="keep OpenVINO's compiled models in the user cache, so the next start skips the "
                             "compile (default: on; EDGE_CLIPGUARD_NO_COMPILE_CACHE=1 also turns it off)")


def register(commands) -> None:
    """Add ``predict``, ``profile`` and ``serve`` to the CLI's subparsers."""
    _add_predict_parser(commands)
    _add_profile_parser(commands)
    _add_serve_parser(commands)


def _add_predict_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("predict", help="score a text and box what it refers to in images or video",
                                   description="Run a bundle on one (text, image) pair, or on every frame of a "
                                               "folder, glob, video, camera or stream (--source).")
    _add_common(parser, BACKENDS)
    parser.add_argument("--text", default=None, help="the text to score (UTF-8)")
    parser.add_argument("--texts", default=None, metavar="FILE",
                        help="one text per line, each scored against every frame; or a .jsonl of "
                             '{"text": ..., "image": ...} pairs')
    parser.add_argument("--image", default=None, help="one image file (any format Pillow reads)")
    parser.add_argument("--source", default=None, metavar="SRC",
                        help="an image, a folder or glob of images, a video file, a camera index (0) or an "
                             "rtsp:// / http:// stream (video needs the [video] extra)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="artifact precision (default: best for the backend; fp32 on the CPU)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"drop detections below this confidence (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU,
                        help=f"per-class NMS: drop a box overlapping a more confident one of its class by more "
                             f"than this IoU (default {DEFAULT_NMS_IOU}; 1 turns it off)")
    parser.add_argument("--draw", default=None,
                        help="annotated output: a picture for an image, a folder for a folder, a video for a video")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (single image)")
    parser.add_argument("--jsonl", default=None, metavar="OUT", help="one JSON line per frame and text, flushed")
    parser.add_argument("--coco-results", default=None, metavar="OUT.json", help="detections in COCO results format")
    parser.add_argument("--batch", type=int, default=8, help="frames per inference batch with --source (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="threads decoding frames ahead (default 2)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds a camera or stream may stay silent before the run stops (default 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run_predict)
    return parser


def _add_profile_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("profile", help="latency per stage and end-to-end for every artifact",
                                   description="Time tokenize/preprocess/infer/decode and end-to-end for every "
                                               "artifact the backend(s) can run, side by side.")
    _add_common(parser, PROFILE_BACKENDS)
    parser.add_argument("--precision", default="all", help="all (default) or a comma list of fp32,fp16,int8")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes (default: 1), e.g. 1,8")
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per row (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up iterations per row (default 10)")
    parser.add_argument("--json", default=None, help="write the report as JSON to this file")
    parser.add_argument("--plot", default=None, help="write a PNG chart of stage medians (needs matplotlib)")
    parser.add_argument("--compare-torch", default=None, metavar="CKPT",
                        help="add PyTorch eager and torch.compile rows of this checkpoint (needs torch)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="with --compare-torch: also time torch.compile (default: on)")
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                        help="add a predict_stream throughput row per artifact (JPEG bytes in; default: on)")
    parser.add_argument("--startup", action=argparse.BooleanOptionalAction, default=True,
                        help="time to first prediction of a fresh process per artifact, with an empty and a filled "
                             "compile cache (two short-lived processes each; default: on)")
    parser.add_argument("--layers", type=int, nargs="?", const=12, default=0, metavar="N",
                        help="OpenVINO per-node profiling of each OpenVINO artifact at batch 1: the share of time in "
                             "int8 kernels, the N heaviest kernels and float nodes (default N: 12)")
    parser.add_argument("-v", "--verbose", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                        help="print progress to stderr (and third-party warnings, as the global -v)")
    parser.set_defaults(handler=run_profile)
    return parser


def _add_serve_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="serve a bundle over HTTP/gRPC with Triton (PyTriton)",
                                   description="Serve the bundle's Predictor as Triton model 'clipguard' (inputs "
                                               "text and image as BYTES; outputs score, boxes, confidences, labels, "
                                               "count) with dynamic batching; needs the [serve] extra. SIGTERM or "
                                               "Ctrl-C drains in-flight requests and exits 0. --write-repo writes a "
                                               "plain Triton model repository instead.")
    _add_common(parser, BACKENDS)
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="artifact precision (default: best for the backend; fp32 on the CPU)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, loopback only; 0.0.0.0 for every interface)")
    parser.add_argument("--http-port", type=int, default=8000, help="HTTP/REST port (default 8000)")
    parser.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    parser.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    parser.add_argument("--max-batch", type=int, default=16, help="most images per inference batch (default 16)")
    parser.add_argument("--max-queue-delay-us", type=int, default=2000,
                        help="how long a request may wait for others to batch with, in microseconds (default 2000)")
    parser.add_argument("--dynamic-batching", action=argparse.BooleanOptionalAction, default=True,
                        help="batch concurrent requests together (default: on); off isolates each request")
    parser.add_argument("--instances", type=int, default=1,
                        help="model instances, each with its own predictor; CPU threads are split between them")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"drop detections below this confidence (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU,
                        help=f"per-class NMS IoU threshold (default {DEFAULT_NMS_IOU}; 1 turns it off)")
    parser.add_argument("--model-name", default="clipguard", help="Triton model name (default clipguard)")
    parser.add_argument("--drain-timeout", type=int, default=5,
                        help="seconds a stop waits for in-flight requests and open client connections, then exits "
                             "(default 5)")
    parser.add_argument("--write-repo", default=None, metavar="DIR",
                        help="write a standard Triton model repository (config.pbtxt per ONNX/plan artifact, "
                             "served by Triton's onnxruntime/tensorrt backends) to DIR and exit; no PyTriton needed")
    parser.set_defaults(handler=run_serve)
    return parser
