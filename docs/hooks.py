"""mkdocs hooks: pages generated from the code at build time, so they cannot drift from it.

- ``reference/cli.md``: every command's ``--help``, from the argparse parsers the CLI itself builds;
- the error table of ``troubleshooting.md`` (``<!-- errors -->``): every ClipGuardError family with its
  docstring, from the classes themselves.

The API pages read the source with griffe, which walks one package folder; this package's runtime/ and export/
live at the top level (pyproject's package-dir), so ``on_startup`` copies the package into one folder,
``build/api-src`` (a copy: griffe resolves symlinks back to the checkout; mkdocs.yml points mkdocstrings there).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import shutil
from pathlib import Path

from mkdocs.structure.files import File

ERROR_MODULES = ("edge_clipguard.errors", "edge_clipguard.bundle", "edge_clipguard.signing.signature",
                 "edge_clipguard.runtime.errors", "edge_clipguard.export.types", "edge_clipguard.train.checkpoint",
                 "edge_clipguard.export.tensorrt_build", "edge_clipguard.runtime.sources",
                 "edge_clipguard.runtime.backends.tensorrt_runner", "edge_clipguard.config")


def _subcommands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix} {name}", sub))
                found.extend(_subcommands(sub, f"{prefix} {name}"))
    return found


def cli_markdown() -> str:
    from edge_clipguard.cli import build_parser

    parser = build_parser()
    parts = ["# CLI reference\n", "Generated from the CLI's own argparse parsers when the site is built.\n",
             "## edge-clipguard\n", f"```text\n{parser.format_help()}```\n"]
    for name, sub in _subcommands(parser, "edge-clipguard"):
        parts += [f"## {name}\n", f"```text\n{sub.format_help()}```\n"]
    return "\n".join(parts)


def error_table() -> str:
    from edge_clipguard.errors import ClipGuardError

    classes = {}
    for module in ERROR_MODULES:
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(cls, ClipGuardError):
                classes[cls.__name__] = cls
    rows = ["| error | is a | what it means |", "|---|---|---|"]
    for name in sorted(classes):
        cls = classes[name]
        parent = next((b.__name__ for b in cls.__mro__[1:] if issubclass(b, ClipGuardError)), "Exception")
        doc = " ".join((inspect.getdoc(cls) or "").split()).replace("|", "\\|")
        rows.append(f"| `{name}` | `{parent}` | {doc} |")
    return "\n".join(rows)


def on_startup(command, dirty):
    """Before any plugin reads its config: mkdocstrings checks its ``paths`` when it is configured."""
    root = Path(__file__).resolve().parent.parent
    mirror = root / "build" / "api-src" / "edge_clipguard"
    shutil.rmtree(mirror.parent, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(root / "edge_clipguard", mirror, ignore=ignore)  # copies: griffe follows symlinks home
    for name in ("runtime", "export"):
        shutil.copytree(root / name, mirror / name, ignore=ignore)


def on_files(files, config):
    files.append(File.generated(config, "reference/cli.md", content=cli_markdown()))
    return files


def on_page_markdown(markdown, page, config, files):
    return markdown.replace("<!-- errors -->", error_table()) if "<!-- errors -->" in markdown else markdown
