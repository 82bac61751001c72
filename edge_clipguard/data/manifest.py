"""The JSONL manifest: one sample per line, shared by every dataset and by users' own data.

``{"image": path|null, "text": str, "score": float in [0,10], "boxes": [[x1,y1,x2,y2], ...],
"labels": [int, ...]}`` plus optional ``"domain"``, ``"id"``, ``"split"``, ``"text_id"``.
Boxes are in original-image pixels (x1,y1,x2,y2, absolute). ``image`` is relative to the
manifest's folder (or absolute); it is null for text-only rows such as the VADER sentences.

``score`` is optional (absent or null: ``Sample.score`` is None): imported detection data
(``data import coco | odvg``) has boxes but no score, and such rows train the box heads only, as
text-only rows train the score head only. A row needs an image or a score (else it trains nothing);
rows without a score are written without the key.

A row may hold ``"text_ref": {"source": "vader", "id": "tweets:3008", "prefix": "About the stars: "}``
*instead of* ``"text"`` and ``"score"``: the reader fills them in from the prepared VADER cache
(text = prefix + sentence, score = the sentence's score). That lets a manifest be committed
without third-party text (the calibration set does this). This reader takes the resolver as an
argument and knows no dataset; ``text_refs.load_manifest`` wires in the VADER cache.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..contract import SCORE_MAX, SCORE_MIN
from ..errors import DataError
from ..jsonl import iter_jsonl

REQUIRED_FIELDS = ("image", "text", "boxes", "labels")
REF_REQUIRED_FIELDS = ("image", "text_ref", "boxes", "labels")  # a text_ref stands in for text and score
OPTIONAL_FIELDS = ("domain", "id", "split", "text_id")
SCORE_FIELD = "score"  # optional: absent or null for rows that train the box heads only
TEXT_REF_SOURCES = ("vader",)


@dataclass(frozen=True)
class TextRef:
    """A sentence held elsewhere (a prepared dataset cache), named by the id that dataset gives it.
    The row's text is ``prefix`` (our own words) followed by that sentence."""

    source: str
    id: str
    prefix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "id": self.id, "prefix": self.prefix}


# (ref, "file:line") -> (sentence, score); raises DataError naming the place when it cannot.
RefResolver = Callable[[TextRef, str], tuple[str, float]]


@dataclass(frozen=True)
class Sample:
    """One manifest row. ``image`` is an absolute path after reading, or None for text-only rows;
    ``score`` is None for rows without a score target (they train the box heads only)."""

    image: str | None
    text: str
    score: float | None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    labels: tuple[int, ...] = ()
    domain: str | None = None
    id: str | None = None
    split: str | None = None
    text_id: str | None = None
    text_ref: TextRef | None = None  # when set, rows are written with the ref instead of text and score
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        image = self.image
        if image is not None and relative_to is not None:
            try:
                image = str(Path(image).resolve().relative_to(relative_to.resolve()))
            except ValueError:
                image = str(Path(image).resolve())
        row: dict[str, Any] = {"image": image}
        if self.text_ref is not None:
            row["text_ref"] = self.text_ref.to_json()
        else:
            row["text"] = self.text
            if self.score is not None:
                row["score"] = round(float(self.score), 6)
        row["boxes"] = [[round(float(v), 2) for v in box] for box in self.boxes]
        row["labels"] = [int(v) for v in self.labels]
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                row[name] = value
        row.update(self.extra)
        return row


def _is_number(value: Any) -> bool:
    """A finite number that fits a float (JSON allows integers of any size: 1e400 written out overflows)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_text_ref(value: Any, where: str) -> TextRef:
    """Validate a row's ``text_ref`` object (source, id, optional prefix)."""
    if not isinstance(value, dict):
        raise DataError(f"{where}: field 'text_ref' must be an object "
                        f"{{\"source\": ..., \"id\": ..., \"prefix\": ...}}, got {value!r}")
    unknown = sorted(set(value) - {"source", "id", "prefix"})
    if unknown:
        raise DataError(f"{where}: field 'text_ref' has unknown key(s) {unknown}; allowed: source, id, prefix")
    source, ref_id, prefix = value.get("source"), value.get("id"), value.get("prefix", "")
    if source not in TEXT_REF_SOURCES:
        raise DataError(f"{where}: text_ref 'source' must be one of {list(TEXT_REF_SOURCES)}, got {source!r}")
    if not isinstance(ref_id, str) or not ref_id:
        raise DataError(f"{where}: text_ref 'id' must be a non-empty string, got {ref_id!r}")
    if not isinstance(prefix, str):
        raise DataError(f"{where}: text_ref 'prefix' must be a string, got {prefix!r}")
    return TextRef(source=source, id=ref_id, prefix=prefix)


def _text_and_score(row: dict, where: str,
                    resolve: RefResolver | None) -> tuple[str, float | None, TextRef | None]:
    """The row's own text and score (None when absent or null), or those its ``text_ref`` resolves to
    (never both)."""
    ref = None
    if "text_ref" in row:
        clash = [name for name in ("text", "score") if name in row]
        if clash:
            raise DataError(f"{where}: field 'text_ref' replaces 'text' and 'score'; drop {clash} or the ref")
        ref = parse_text_ref(row["text_ref"], where)
        if resolve is None:
            raise DataError(f"{where}: field 'text_ref' needs a text resolver; read this manifest with "
                            "edge_clipguard.data.text_refs.load_manifest (resolves VADER refs)")
        sentence, score = resolve(ref, where)
        text = ref.prefix + sentence
    else:
        text, score = row["text"], row.get(SCORE_FIELD)
    return text, score, ref


def parse_row(row: Any, where: str, base_dir: Path, num_classes: int | None = None,
              resolve: RefResolver | None = None, unlabeled: bool = False) -> Sample:
    """Validate one parsed JSON row; raise DataError naming ``where`` (file:line) and the field.
    ``resolve`` turns a ``text_ref`` into (sentence, score); without one, a ref row is an error.
    ``unlabeled``: a text-only row without a score is fine (domain adaptation's target rows)."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    required = REF_REQUIRED_FIELDS if "text_ref" in row else REQUIRED_FIELDS
    missing = [name for name in required if name not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}; required: {list(required)}")
    image = row["image"]
    if image is not None and (not isinstance(image, str) or not image or "\x00" in image):
        raise DataError(f"{where}: field 'image' must be a path string or null, got {image!r}")
    text, score, text_ref = _text_and_score(row, where, resolve)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field 'text' must be a non-empty string, got {text!r}")
    if score is None and image is None and not unlabeled:
        raise DataError(f"{where}: a row needs an 'image' or a 'score' (this one would train nothing)")
    if score is not None and (not _is_number(score) or not SCORE_MIN <= score <= SCORE_MAX):
        raise DataError(f"{where}: field 'score' must be a number in [{SCORE_MIN:g}, {SCORE_MAX:g}], got {score!r}")
    boxes, labels = row["boxes"], row["labels"]
    if not isinstance(boxes, list) or not isinstance(labels, list) or len(boxes) != len(labels):
        raise DataError(f"{where}: fields 'boxes' and 'labels' must be lists of equal length")
    parsed_boxes = []
    for i, box in enumerate(boxes):
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise DataError(f"{where}: boxes[{i}] must be [x1, y1, x2, y2] numbers, got {box!r}")
        x1, y1, x2, y2 = (float(v) for v in box)
        if not (x2 > x1 and y2 > y1):
            raise DataError(f"{where}: boxes[{i}] must have x2 > x1 and y2 > y1, got {box!r}")
        parsed_boxes.append((x1, y1, x2, y2))
    for i, label in enumerate(labels):
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise DataError(f"{where}: labels[{i}] must be a non-negative integer, got {label!r}")
        if num_classes is not None and label >= num_classes:
            raise DataError(f"{where}: labels[{i}] = {label} but the model has {num_classes} classes")
    if boxes and image is None:
        raise DataError(f"{where}: a row with boxes needs an 'image'")
    image_path = None
    if image is not None:
        image_path = str(Path(image) if Path(image).is_absolute() else (base_dir / image).resolve())
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS) | {SCORE_FIELD, "text_ref"}
    optional = {name: row.get(name) for name in OPTIONAL_FIELDS}
    for name, value in optional.items():
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: field '{name}' must be a string, got {value!r}")
    return Sample(
        image=image_path,
        text=text,
        score=None if score is None else float(score),
        boxes=tuple(parsed_boxes),
        labels=tuple(int(v) for v in labels),
        text_ref=text_ref,
        extra={k: v for k, v in row.items() if k not in known},
        **optional,
    )


def read_manifest(path: str | Path, num_classes: int | None = None,
                  resolve: RefResolver | None = None, unlabeled: bool = False) -> list[Sample]:
    """Read and validate a JSONL manifest; image paths come back absolute. Rows with a
    ``text_ref`` get their text and score from ``resolve`` (see ``text_refs.load_manifest``);
    ``unlabeled`` admits text-only rows without a score (see ``parse_row``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    samples = [parse_row(row, where, path.parent, num_classes, resolve, unlabeled) for where, row in iter_jsonl(path)]
    if not samples:
        raise DataError(f"{path}: manifest has no samples")
    return samples


def write_manifest(path: str | Path, samples: Iterable[Sample]) -> Path:
    """Write samples as JSONL atomically, with image paths relative to the manifest's folder."""
    path = Path(path)
    lines = [json.dumps(s.to_json(relative_to=path.parent), ensure_ascii=False) for s in samples]
    return write_text_atomic(path, "\n".join(lines) + "\n")
