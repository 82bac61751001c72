"""``edge-clipguard data ...``: prepare the VADER text data, rendered scenes and the calibration set."""

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
    path = generate_scenes(args.out, args.count, args.seed, args.split, vader)
    print(f"{args.count} {args.split} scenes: {path}")


def _cmd_data_calibration(args: argparse.Namespace) -> None:
    from .calibration import make_calibration_set

    path = make_calibration_set(args.out, args.count, args.seed, args.vader, args.val_count)
    print(f"{args.count} calibration rows: {path}" + (f"; {args.val_count} validation rows" if args.val_count else ""))


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
    scenes.set_defaults(handler=_cmd_data_scenes)

    calib = data.add_parser("calibration", help="our own INT8 calibration set: procedural scenes, VADER text by id")
    calib.add_argument("--out", default=COMMITTED_DIR, help="output folder (keeps other files, e.g. README)")
    calib.add_argument("--count", type=int, default=DEFAULT_COUNT, help="calibration rows (VADER train sentences)")
    calib.add_argument("--val-count", type=int, default=DEFAULT_VAL_COUNT,
                       help="held-apart rows (VADER val sentences); 0: none")
    calib.add_argument("--seed", type=int, default=DEFAULT_SEED)
    calib.add_argument("--vader", help="prepared VADER folder (default: the cache, prepared if absent)")
    calib.set_defaults(handler=_cmd_data_calibration)

