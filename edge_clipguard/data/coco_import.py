"""``data import coco``: a COCO ``instances_*.json`` (+ images, + optional captions) -> our JSONL manifest.

What the model learns from a row: the text refers to one class present in the image and the target
boxes are only that class's instances (README "Scenes"). So:

* **template mode** (default): one row per (image, category present), text =
  ``--text-template`` with ``{class}`` filled in ("a photo of dog"), boxes = that category's instances;
* **captions mode** (``--captions captions_*.json``): one row per image, text = its first caption (in
  file order), boxes = the instances of the categories the caption names (whole words, case-insensitive,
  singular or -s/-es plural; ``imported.mentions``); a caption naming no category keeps all the image's
  boxes (counted), since a caption still describes the whole picture. Images without a caption are skipped.

COCO boxes ``[x, y, w, h]`` become ``[x1, y1, x2, y2]`` in the same pixels; category ids map to
contiguous labels 0..C-1 in id order, and all category names (in that order) become the class list.
Crowd boxes (``iscrowd``), boxes with w or h <= 0 and images left without boxes are skipped and counted.
Rows carry no score: they train the box heads only. The parsing is pure (``coco_rows``); ``import_coco``
reads the files and writes (``imported.write_import``, which first checks that the images exist).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataError
from .imported import (
    DEFAULT_TEMPLATE,
    ImportResult,
    check_template,
    fill_template,
    load_json,
    mentions,
    write_import,
)
from .manifest import Sample
from .manifest import _is_number as is_number


def _list_field(data: dict, key: str, where: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise DataError(f"{where}: field '{key}' must be a list, got {type(value).__name__}")
    return value


def _int_field(item: Any, key: str, where: str) -> int:
    value = item.get(key) if isinstance(item, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{where}.{key} must be an integer, got {value!r}")
    return value


def coco_categories(data: dict, where: str) -> tuple[dict[int, int], tuple[str, ...]]:
    """(COCO category id -> contiguous label in id order, class names in label order)."""
    names: dict[int, str] = {}
    for i, cat in enumerate(_list_field(data, "categories", where)):
        cat_id = _int_field(cat, "id", f"{where}: categories[{i}]")
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: categories[{i}].name must be a non-empty string, got {name!r}")
        if cat_id in names:
            raise DataError(f"{where}: categories[{i}].id {cat_id} appears twice")
        names[cat_id] = name.strip()
    if not names:
        raise DataError(f"{where}: field 'categories' is empty; the class list comes from it")
    ordered = sorted(names)
    classes = tuple(names[c] for c in ordered)
    if len(set(classes)) != len(classes):
        raise DataError(f"{where}: category names must be distinct (they become the class list)")
    return {cat_id: label for label, cat_id in enumerate(ordered)}, classes


def coco_images(data: dict, where: str) -> dict[int, str]:
    """COCO image id -> file_name, in file order."""
    images: dict[int, str] = {}
    for i, image in enumerate(_list_field(data, "images", where)):
        image_id = _int_field(image, "id", f"{where}: images[{i}]")
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise DataError(f"{where}: images[{i}].file_name must be a non-empty string, got {file_name!r}")
        if image_id in images:
            raise DataError(f"{where}: images[{i}].id {image_id} appears twice")
        images[image_id] = file_name
    return images


def coco_boxes(data: dict, where: str, labels: dict[int, int], images: dict[int, str],
               result: ImportResult) -> dict[int, list[tuple[tuple[float, float, float, float], int]]]:
    """image id -> [(x1y1x2y2 box, label)], in annotation order; crowd and empty boxes are counted in
    ``result.skipped`` and left out."""
    boxes: dict[int, list] = {}
    for i, ann in enumerate(_list_field(data, "annotations", where)):
        at = f"{where}: annotations[{i}]"
        image_id, cat_id = _int_field(ann, "image_id", at), _int_field(ann, "category_id", at)
        if image_id not in images:
            raise DataError(f"{at}.image_id {image_id} is not in 'images'")
        if cat_id not in labels:
            raise DataError(f"{at}.category_id {cat_id} is not in 'categories'")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            raise DataError(f"{at}.bbox must be [x, y, w, h] numbers, got {bbox!r}")
        if ann.get("iscrowd", 0) not in (0, 1, False, True):
            raise DataError(f"{at}.iscrowd must be 0 or 1, got {ann.get('iscrowd')!r}")
        x, y, w, h = (float(v) for v in bbox)
        if ann.get("iscrowd"):
            result.skip("crowd boxes")
        elif w <= 0 or h <= 0:
            result.skip("boxes with w or h <= 0")
        else:
            boxes.setdefault(image_id, []).append(((x, y, x + w, y + h), labels[cat_id]))
    return boxes


def first_captions(data: Any, where: str) -> dict[int, str]:
    """image id -> its first caption (file order) from a COCO ``captions_*.json``."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a COCO captions object with 'annotations'")
    captions: dict[int, str] = {}
    for i, ann in enumerate(_list_field(data, "annotations", where)):
        image_id = _int_field(ann, "image_id", f"{where}: annotations[{i}]")
        caption = ann.get("caption")
        if not isinstance(caption, str):
            raise DataError(f"{where}: annotations[{i}].caption must be a string, got {caption!r}")
        if caption.strip():
            captions.setdefault(image_id, " ".join(caption.split()))
    return captions


def coco_rows(data: Any, images_dir: str | Path, where: str, template: str = DEFAULT_TEMPLATE,
              captions: dict[int, str] | None = None) -> ImportResult:
    """Parsed instances JSON -> rows (image paths under ``images_dir``) and class list; no file access.
    ``captions`` (image id -> caption) switches from template mode to captions mode."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a COCO instances object with 'images', 'annotations', 'categories'")
    check_template(template)
    labels, classes = coco_categories(data, where)
    images = coco_images(data, where)
    result = ImportResult(samples=[], classes=classes)
    boxes = coco_boxes(data, where, labels, images, result)
    folder = Path(images_dir)
    for image_id, file_name in images.items():
        found = boxes.get(image_id)
        if not found:
            result.skip("images without annotations")
            continue
        path = str(folder / file_name)
        if captions is None:
            for label in sorted({lab for _, lab in found}):
                picked = [box for box, lab in found if lab == label]
                result.samples.append(Sample(image=path, text=fill_template(template, classes[label]), score=None,
                                             boxes=tuple(picked), labels=(label,) * len(picked),
                                             id=f"coco:{image_id}:{label}"))
        else:
            caption = captions.get(image_id)
            if caption is None:
                result.skip("images without a caption")
                continue
            named = {lab for _, lab in found if mentions(caption, classes[lab])}
            if not named:
                result.skip("captions naming no class (all their boxes kept)")
            picked = [(box, lab) for box, lab in found if not named or lab in named]
            result.samples.append(Sample(image=path, text=caption, score=None, boxes=tuple(b for b, _ in picked),
                                         labels=tuple(lab for _, lab in picked), id=f"coco:{image_id}"))
        result.images += 1
    return result


def import_coco(instances: str | Path, images_dir: str | Path, out_dir: str | Path, captions: str | Path | None = None,
                template: str = DEFAULT_TEMPLATE, name: str | None = None) -> tuple[ImportResult, Path, Path]:
    """Read, convert, write (once the images are found); returns (result, manifest path, classes.json path)."""
    check_template(template)
    caption_map = first_captions(load_json(captions), str(captions)) if captions else None
    result = coco_rows(load_json(instances), images_dir, str(instances), template, caption_map)
    manifest, classes_file = write_import(result, out_dir, name or Path(instances).stem, instances)
    return result, manifest, classes_file
