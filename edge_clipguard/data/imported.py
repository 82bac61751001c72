"""What every dataset importer shares: the class list file, text templates, the report and the write.

Why: the model's class names live in its config (``heads.class_names``), but users' data brings its
own classes. An importer (``coco_import``, ``odvg_import``) turns labels into contiguous indices and
writes the names, in index order, to ``classes.json`` next to the manifest; ``train
--classes-from-data`` reads that file back (``classes_for_manifests``), so the checkpoint and then the
exported bundle carry the data's names with no config edit. Importers validate everything before
they write, and write each file atomically: bad input leaves nothing half-written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..errors import DataError
from .manifest import Sample, write_manifest

CLASSES_FILE = "classes.json"
DEFAULT_TEMPLATE = "a photo of {class}"


def classes_path(manifest: str | Path) -> Path:
    """Where a manifest's class list lives: ``classes.json`` in the manifest's folder."""
    return Path(manifest).parent / CLASSES_FILE


def read_classes(path: str | Path) -> tuple[str, ...]:
    """A ``classes.json`` (a JSON list of distinct non-empty names); DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: class list not found (written by 'edge-clipguard data import ...')")
    data = load_json(path)
    if not (isinstance(data, list) and data and all(isinstance(n, str) and n.strip() for n in data)):
        raise DataError(f"{path}: expected a JSON list of class names, got {str(data)[:80]!r}")
    if len(set(data)) != len(data):
        raise DataError(f"{path}: class names must be distinct")
    return tuple(data)


def classes_for_manifests(manifests: Iterable[str | Path]) -> tuple[str, ...]:
    """The class list of the first manifest's ``classes.json`` (required); any other manifest that has a
    ``classes.json`` must list the same classes, in the same order, or its labels would mean other things.
    Manifests without one (VADER text, our scenes) are taken to use the same list."""
    manifests = [Path(m) for m in manifests]
    if not manifests:
        raise DataError("--classes-from-data: no --data manifest given")
    first = classes_path(manifests[0])
    if not first.is_file():
        raise DataError(f"{first}: not found; --classes-from-data reads the class list written next to the first "
                        "--data manifest by 'edge-clipguard data import coco|odvg'")
    classes = read_classes(first)
    for manifest in manifests[1:]:
        other = classes_path(manifest)
        if other.is_file() and read_classes(other) != classes:
            raise DataError(f"{other}: lists other classes than {first}; manifests trained together must share "
                            "one class list")
    return classes


def load_json(path: str | Path) -> Any:
    """One JSON document; DataError naming the file (and line/column) when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None


def normalise_name(name: str) -> str:
    """A class name as the class list holds it: lower case, single spaces, no surrounding punctuation,
    so "Red Car", "red car." and " red  car" are one class."""
    return " ".join(name.lower().split()).strip(" .,;:!?\"'")


def check_template(template: str) -> str:
    """A text template must name ``{class}`` and nothing else; DataError naming ``--text-template`` otherwise."""
    try:
        filled = template.format(**{"class": "x"})
    except (KeyError, IndexError, ValueError) as exc:
        raise DataError(f"--text-template {template!r}: only {{class}} may be filled in ({exc})") from None
    if "{class}" not in template or not filled.strip():
        raise DataError(f"--text-template {template!r}: must contain {{class}}, e.g. {DEFAULT_TEMPLATE!r}")
    return template


def fill_template(template: str, class_name: str) -> str:
    return template.format(**{"class": class_name})


def mentions(text: str, class_name: str) -> bool:
    """Whether ``text`` names the class as whole words, case-insensitively, singular or with a simple
    plural (-s/-es on the last word): "two dogs" names "dog", "traffic lights" names "traffic light".
    Irregular plurals ("people" for "person") are not matched."""
    words = [re.escape(w) for w in class_name.lower().split()]
    if not words:
        return False
    pattern = r"\b" + r"\s+".join(words[:-1] + [words[-1] + r"(?:s|es)?"]) + r"\b"
    return re.search(pattern, text.lower()) is not None


@dataclass
class ImportResult:
    """Rows and class list an importer made, and what it skipped (reason -> count), before writing."""

    samples: list[Sample]
    classes: tuple[str, ...]
    images: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count


def check_images_exist(samples: list[Sample], source: str | Path) -> None:
    """Every image a row names must be a file; one line naming the first missing one and how many are."""
    missing = sorted({s.image for s in samples if s.image is not None and not Path(s.image).is_file()})
    if missing:
        raise DataError(f"{source}: {len(missing)} image file(s) not found, e.g. {missing[0]} "
                        "(check --images)")


def write_import(result: ImportResult, out_dir: str | Path, name: str, source: str | Path) -> tuple[Path, Path]:
    """Check the rows' images exist, then write ``out_dir/name.jsonl`` and ``out_dir/classes.json`` (each
    atomically, the class list first). A ``classes.json`` already there with other classes is an error:
    manifests in one folder share it."""
    if not result.samples:
        raise DataError(f"{source}: no rows to import (every image or line was skipped: "
                        f"{describe_skipped(result.skipped) or 'nothing usable'})")
    check_images_exist(result.samples, source)
    out_dir = Path(out_dir)
    manifest = out_dir / f"{name}.jsonl"
    if manifest.resolve() == Path(source).resolve():
        raise DataError(f"{manifest}: would overwrite the input; give another --out or --name")
    classes_file = out_dir / CLASSES_FILE
    if classes_file.is_file() and read_classes(classes_file) != result.classes:
        raise DataError(f"{classes_file}: already lists other classes; import into another --out folder")
    write_text_atomic(classes_file, json.dumps(list(result.classes), ensure_ascii=False, indent=1) + "\n")
    return write_manifest(manifest, result.samples), classes_file


def describe_skipped(skipped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in skipped.items() if count)
