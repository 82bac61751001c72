"""The ``edge-clipguard`` command: thin argparse wrappers over library functions.

Errors the user can act on (``ClipGuardError``) print as one line on stderr with exit code 2,
never a traceback. Heavy imports (torch) happen inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import ClipGuardError
from .paths import default_vader_dir


def _cmd_data_vader(args: argparse.Namespace) -> None:
    from .data.vader import prepare_vader

    path = prepare_vader(args.out, seed=args.seed)
    print(f"VADER manifest: {path}")


def _cmd_data_scenes(args: argparse.Namespace) -> None:
    from .data.scenes import generate_scenes
    from .data.vader import prepare_vader

    vader = Path(args.vader) if args.vader else Path(prepare_vader(default_vader_dir()))
    path = generate_scenes(args.out, args.count, args.seed, args.split, vader)
    print(f"{args.count} {args.split} scenes: {path}")


def _cmd_info(args: argparse.Namespace) -> None:
    from .config import load_config
    from .model import build_model

    cfg = load_config(args.config)
    model = build_model(cfg)
    print(f"config '{cfg.name}': image {cfg.image_size}px, text {cfg.text.max_length} tokens, "
          f"classes {list(cfg.heads.class_names)}, top_k {cfg.heads.top_k}")
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        print(f"  {name:<14}{count / 1e6:>8.2f} M")
    print(f"  {'total':<14}{sum(p.numel() for p in model.parameters()) / 1e6:>8.2f} M")


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import DemoConfig, run_demo

    run_demo(DemoConfig(work_dir=args.work, config=args.config, train_scenes=args.train_scenes,
                        val_scenes=args.val_scenes, steps=args.steps, batch_size=args.batch_size, seed=args.seed))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-clipguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edge-clipguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

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

    info = commands.add_parser("info", help="build a model config and print its parameter counts")
    info.add_argument("--config", default="base", help="built-in name (tiny, base) or JSON path")
    info.set_defaults(handler=_cmd_info)

    demo = commands.add_parser("demo", help="the main job on built-in defaults")
    demo.add_argument("--work", default="runs/demo", help="work folder")
    demo.add_argument("--config", default="base")
    demo.add_argument("--train-scenes", type=int, default=384)
    demo.add_argument("--val-scenes", type=int, default=64)
    demo.add_argument("--steps", type=int, default=40)
    demo.add_argument("--batch-size", type=int, default=8)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ClipGuardError as exc:
        print(f"edge-clipguard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-clipguard: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
