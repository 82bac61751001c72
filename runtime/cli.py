"""``predict`` and ``profile`` subcommands: thin argparse wrappers over the runtime library.

``register(commands)`` adds both to the CLI's subparsers, as every command family does; each sets
``handler``. Handlers raise ClipGuardError subclasses for anything the user can fix, which the CLI
prints as one line (exit 2). No torch import unless ``profile --compare-torch`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..bundle import PRECISIONS, parse_precisions
from .decode import DEFAULT_MIN_CONFIDENCE, DEFAULT_NMS_IOU
from .selection import BACKENDS, DEVICES


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


def run_predict(args: argparse.Namespace) -> None:
    from ..image_io import load_image
    from .draw import draw_result, save_image_atomic
    from .predictor import Predictor

    image = load_image(args.image)  # decode once: predict and --draw see the same pixels
    with Predictor.load(args.bundle, backend=args.backend, device=args.device, precision=args.precision,
                        threads=args.threads, min_confidence=args.min_confidence, nms_iou=args.nms_iou) as predictor:
        result = predictor.predict(args.text, image)
        header = f"bundle: {args.bundle}  artifact: {predictor.describe()}"
        max_tokens = predictor.manifest.preprocess.max_text_length
    if result.text_truncated:
        _warn(f"text is longer than the model's {max_tokens} tokens; it was truncated (score is for the kept part)")
    if args.draw:
        save_image_atomic(draw_result(image, result), args.draw)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_result(result, header))
        if args.draw:
            print(f"drawn: {args.draw}")


def run_profile(args: argparse.Namespace) -> None:
    from .profile import parse_batch_sizes, profile_bundle
    from .profile_report import format_table, write_json, write_plot
    from .profile_types import ProfileRequest

    req = ProfileRequest(bundle=args.bundle, backend=args.backend, device=args.device,
                         precisions=parse_precisions(args.precision), batch_sizes=parse_batch_sizes(args.batch),
                         iters=args.iters, warmup=args.warmup, threads=args.threads, compare_torch=args.compare_torch,
                         torch_compile=args.compile)
    verbose = getattr(args, "verbose", False)  # SUPPRESS default: absent unless -v was given somewhere
    report = profile_bundle(req, log=lambda msg: print(msg, file=sys.stderr) if verbose else None)
    print(format_table(report))
    if args.json:
        print(f"json: {write_json(report, args.json)}")
    if args.plot:
        print(write_plot(report, args.plot))


def _add_common(parser: argparse.ArgumentParser, backends: tuple[str, ...]) -> None:
    parser.add_argument("bundle", help="bundle directory written by 'edge-clipguard export'")
    parser.add_argument("--backend", choices=backends, default="auto", help="inference backend (default: auto)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime (default: all CPUs)")


def register(commands) -> None:
    """Add ``predict`` and ``profile`` to the CLI's subparsers."""
    _add_predict_parser(commands)
    _add_profile_parser(commands)


def _add_predict_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("predict", help="score a text and box what it refers to in an image",
                                   description="Run a bundle on one (text, image) pair and print the result.")
    _add_common(parser, BACKENDS)
    parser.add_argument("--text", required=True, help="the text to score (UTF-8)")
    parser.add_argument("--image", required=True, help="image file (any format Pillow reads)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="artifact precision (default: best for the backend; fp32 on the CPU)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"drop detections below this confidence (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--nms-iou", type=float, default=DEFAULT_NMS_IOU,
                        help=f"per-class NMS: drop a box overlapping a more confident one of its class by more "
                             f"than this IoU (default {DEFAULT_NMS_IOU}; 1 turns it off)")
    parser.add_argument("--draw", default=None, help="write the image with boxes and score to this file (.png/.jpg)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run_predict)
    return parser


def _add_profile_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("profile", help="latency per stage and end-to-end for every artifact",
                                   description="Time tokenize/preprocess/infer/decode and end-to-end for every "
                                               "artifact the backend(s) can run, side by side.")
    _add_common(parser, ("auto", "all", "onnxruntime", "tensorrt"))
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
    parser.add_argument("-v", "--verbose", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                        help="print progress to stderr (and third-party warnings, as the global -v)")
    parser.set_defaults(handler=run_profile)
    return parser
