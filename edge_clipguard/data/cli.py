"""``edge-clipguard data ...``: prepare the VADER text data, rendered scenes and the calibration set, and
import users' own detection data (``data import coco | odvg``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import default_vader_dir
from .calibration import COMMITTED_DIR, DEFAULT_COUNT, DEFAULT_SEED, DEFAULT_VAL_COUNT


def _cmd_data_vader(args: argparse.Namespace) -> None:
    from .vader import prepare_vader

    path = prepare_vader(args.out, seed=args.seed)
    print(f"VADER manifest: {path}")


def _cmd_data_scenes(args: argparse.Namespace) -> None:
    from .scenes import generate_scenes
    from .vader import prepare_vader

    vader = Path(args.vader) if args.vader else Path(prepare_vader(default_vader_dir()))
    path = generate_scenes(args.out, args.count, args.seed, args.split, vader, shift=args.shift)
    print(f"{args.count} {args.split} scenes{f' ({args.shift})' if args.shift else ''}: {path}")


def _cmd_data_calibration(args: argparse.Namespace) -> None:
    from .calibration import make_calibration_set

    path = make_calibration_set(args.out, args.count, args.seed, args.vader, args.val_count)
    print(f"{args.count} calibration rows: {path}" + (f"; {args.val_count} validation rows" if args.val_count else ""))


def _report_import(kind: str, result, manifest: Path, classes_file: Path, how: str) -> None:
    from .imported import describe_skipped

    print(f"{kind}: {result.images} images -> {len(result.samples)} rows ({how}), {len(result.classes)} classes")
    print(f"  manifest: {manifest}")
    print(f"  classes:  {classes_file}")
    print(f"  skipped:  {describe_skipped(result.skipped) or 'nothing'}")
    print(f"next: edge-clipguard train --config base --data {manifest} --classes-from-data --out RUN")


def _cmd_import_coco(args: argparse.Namespace) -> None:
    from .coco_import import import_coco

    result, manifest, classes_file = import_coco(args.instances, args.images, args.out, args.captions,
                                                 args.text_template, args.name)
    how = ("one per image, its first caption" if args.captions
           else f"one per image and class, text {args.text_template!r}")
    _report_import("coco", result, manifest, classes_file, how)


def _cmd_import_odvg(args: argparse.Namespace) -> None:
    from .odvg_import import import_odvg

    result, manifest, classes_file = import_odvg(args.file, args.out, args.images, args.text_template, args.name)
    _report_import("odvg", result, manifest, classes_file,
                   f"grounding lines: their caption; detection lines: {args.text_template!r} per class")


def _register_import(data) -> None:
    from .imported import DEFAULT_TEMPLATE

    kinds = data.add_parser("import", help="your own detection data -> manifest + classes.json (no scores)")
    kinds = kinds.add_subparsers(dest="kind", required=True)
    template_help = "text of a row that refers to one class; {class} is filled in"
    name_help = "manifest name: OUT/NAME.jsonl (default: the input file's stem)"

    coco = kinds.add_parser("coco", help="COCO instances JSON: boxes [x,y,w,h] -> [x1,y1,x2,y2], categories -> classes")
    coco.add_argument("instances", help="instances_*.json")
    coco.add_argument("--images", required=True, help="folder the file_name entries are relative to")
    coco.add_argument("--out", required=True, help="output folder: NAME.jsonl and classes.json")
    coco.add_argument("--captions", help="captions_*.json: one row per image with its first caption")
    coco.add_argument("--text-template", default=DEFAULT_TEMPLATE, help=template_help)
    coco.add_argument("--name", help=name_help)
    coco.set_defaults(handler=_cmd_import_coco)

    odvg = kinds.add_parser("odvg", help="grounding JSONL (ODVG): caption + regions with phrases, or detection form")
    odvg.add_argument("file", help="the ODVG .jsonl")
    odvg.add_argument("--images", help="folder the filename entries are relative to (default: the file's folder)")
    odvg.add_argument("--out", required=True, help="output folder: NAME.jsonl and classes.json")
    odvg.add_argument("--text-template", default=DEFAULT_TEMPLATE, help=template_help + " (detection form)")
    odvg.add_argument("--name", help=name_help)
    odvg.set_defaults(handler=_cmd_import_odvg)


def register(commands) -> None:
    """Add the ``data`` command family to the CLI's subparsers."""
    data = commands.add_parser("data", help="prepare datasets").add_subparsers(dest="dataset", required=True)
    vader = data.add_parser("vader", help="VADER ground truth -> 0-10 score manifest (fetched via pip)")
    vader.add_argument("--out", default=str(default_vader_dir()), help="output folder (default: the cache)")
    vader.add_argument("--seed", type=int, default=0, help="seed of the per-domain train/val/test split")
    vader.set_defaults(handler=_cmd_data_vader)

    scenes = data.add_parser("scenes", help="render scenes with text-referred objects")
    scenes.add_argument("--out", required=True, help="output folder (gets <split>.jsonl and images/<split>/)")
    scenes.add_argument("--count", type=int, required=True)
    scenes.add_argument("--seed", type=int, default=0)
    scenes.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="also picks the VADER split the sentences come from")
    scenes.add_argument("--vader", help="prepared VADER folder (default: prepare it in the cache)")
    scenes.add_argument("--shift", choices=("dark", "blur", "small", "clutter"),
                        help="a shifted test set: dark / blur (the normal scenes, darkened or blurred), small "
                             "(objects 1/3 the size), clutter (many distractors, heavy occlusion); writes "
                             "<split>-<shift>.jsonl")
    scenes.set_defaults(handler=_cmd_data_scenes)

    calib = data.add_parser("calibration", help="our own INT8 calibration set: procedural scenes, VADER text by id")
    calib.add_argument("--out", default=COMMITTED_DIR, help="output folder (keeps other files, e.g. README)")
    calib.add_argument("--count", type=int, default=DEFAULT_COUNT, help="calibration rows (VADER train sentences)")
    calib.add_argument("--val-count", type=int, default=DEFAULT_VAL_COUNT,
                       help="held-apart rows (VADER val sentences); 0: none")
    calib.add_argument("--seed", type=int, default=DEFAULT_SEED)
    calib.add_argument("--vader", help="prepared VADER folder (default: the cache, prepared if absent)")
    calib.set_defaults(handler=_cmd_data_calibration)

    _register_import(data)

