"""Line-by-line JSONL reading with errors that name ``file:line`` (neutral layer: no torch, no dataset code)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError


def iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """(``file:line``, parsed JSON) for each non-blank line of a JSONL file; DataError naming the line
    when it is not UTF-8 or not JSON (or the file cannot be read). Shared by the dataset manifest reader,
    the JSONL importers (``odvg_import``) and the runtime's pairs files (``predict --texts X.jsonl``)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            where = f"{path}:{line_no}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") \
                    from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
            except RecursionError:
                raise DataError(f"{where}: invalid JSON (nested too deeply)") from None
            yield where, row
