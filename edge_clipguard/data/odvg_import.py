"""``data import odvg``: the grounding JSONL of open-set detectors (ODVG, as Grounding DINO trains on) -> our manifest.

Each line is one image, in one of two forms:

* grounding: ``{"filename", "height", "width", "grounding": {"caption", "regions": [{"bbox": [x1, y1, x2, y2],
  "phrase"}, ...]}}`` -> one row, text = the caption, boxes = every region, each labelled by its phrase;
* detection: ``{"filename", ..., "detection": {"instances": [{"bbox": [x1, y1, x2, y2], "label", "category"}]}}``
  -> one row per category present (as COCO's template mode: the text refers to one class and the boxes are
  its instances), text = ``--text-template`` with ``{class}`` filled in.

Boxes are already ``[x1, y1, x2, y2]`` pixels. The class list is every phrase/category, normalised
(``imported.normalise_name``: lower case, single spaces) and sorted, so it does not depend on line order;
labels index it. Regions with x2 <= x1 or y2 <= y1, and lines left without a box, are skipped and counted.
``filename`` is relative to ``--images`` (default: the JSONL's folder). Rows carry no score. Parsing is
pure (``odvg_rows``); ``import_odvg`` reads the file and writes (``imported.write_import``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..jsonl import iter_jsonl
from .imported import (
    DEFAULT_TEMPLATE,
    ImportResult,
    check_template,
    fill_template,
    normalise_name,
    write_import,
)
from .manifest import Sample
from .manifest import _is_number as is_number

Box = tuple[float, float, float, float]


def _items(value: Any, key: str, where: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DataError(f"{where}: field '{key}' must be a list of objects")
    return value


def _box_and_name(item: dict, name_key: str, where: str) -> tuple[Box, str]:
    bbox, name = item.get("bbox"), item.get(name_key)
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
        raise DataError(f"{where}.bbox must be [x1, y1, x2, y2] numbers, got {bbox!r}")
    if not isinstance(name, str) or not normalise_name(name):
        raise DataError(f"{where}.{name_key} must be a non-empty string, got {name!r}")
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return (x1, y1, x2, y2), normalise_name(name)


def parse_line(record: Any, where: str) -> tuple[str, str | None, list[tuple[Box, str]]]:
    """One ODVG record -> (filename, caption or None for the detection form, [(box, class name)])."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    filename = record.get("filename")
    if not isinstance(filename, str) or not filename:
        raise DataError(f"{where}: field 'filename' must be a non-empty string, got {filename!r}")
    forms = [key for key in ("grounding", "detection") if key in record]
    if len(forms) != 1:
        raise DataError(f"{where}: expected exactly one of 'grounding' or 'detection', got {forms or 'neither'}")
    body = record[forms[0]]
    if not isinstance(body, dict):
        raise DataError(f"{where}: field '{forms[0]}' must be an object")
    if forms[0] == "grounding":
        caption = body.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"{where}: grounding.caption must be a non-empty string, got {caption!r}")
        regions = _items(body.get("regions"), "grounding.regions", where)
        found = [_box_and_name(r, "phrase", f"{where}: grounding.regions[{i}]") for i, r in enumerate(regions)]
        return filename, " ".join(caption.split()), found
    instances = _items(body.get("instances"), "detection.instances", where)
    return filename, None, [_box_and_name(r, "category", f"{where}: detection.instances[{i}]")
                            for i, r in enumerate(instances)]


def odvg_rows(lines: Iterable[tuple[str, Any]], images_dir: str | Path,
              template: str = DEFAULT_TEMPLATE) -> ImportResult:
    """(``file:line``, parsed JSON) per line -> rows and the class list; no file access."""
    check_template(template)
    records = [(where.rsplit(":", 1)[-1], *parse_line(record, where)) for where, record in lines]
    result = ImportResult(samples=[], classes=())
    kept = []
    for line, filename, caption, found in records:
        good = [(box, name) for box, name in found if box[2] > box[0] and box[3] > box[1]]
        result.skip("regions with x2 <= x1 or y2 <= y1", len(found) - len(good))
        if good:
            kept.append((line, filename, caption, good))
        else:
            result.skip("lines without a box")
    result.classes = tuple(sorted({name for *_, good in kept for _, name in good}))
    label = {name: i for i, name in enumerate(result.classes)}
    folder = Path(images_dir)
    for line, filename, caption, good in kept:
        path = str(folder / filename)
        if caption is not None:
            result.samples.append(Sample(image=path, text=caption, score=None, boxes=tuple(b for b, _ in good),
                                         labels=tuple(label[n] for _, n in good), id=f"odvg:{line}"))
        else:
            for name in sorted({n for _, n in good}, key=label.get):
                boxes = tuple(b for b, n in good if n == name)
                result.samples.append(Sample(image=path, text=fill_template(template, name), score=None,
                                             boxes=boxes, labels=(label[name],) * len(boxes),
                                             id=f"odvg:{line}:{label[name]}"))
        result.images += 1
    return result


def import_odvg(path: str | Path, out_dir: str | Path, images_dir: str | Path | None = None,
                template: str = DEFAULT_TEMPLATE, name: str | None = None) -> tuple[ImportResult, Path, Path]:
    """Read, convert, write (once the images are found); returns (result, manifest path, classes.json path)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    result = odvg_rows(iter_jsonl(path), images_dir if images_dir is not None else path.parent, template)
    manifest, classes_file = write_import(result, out_dir, name or path.stem, path)
    return result, manifest, classes_file
