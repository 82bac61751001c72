"""Resolve a manifest row's ``text_ref`` to its sentence and score from the prepared VADER cache.

Why: committed manifests (the calibration set) must not carry third-party text, so their rows
name a VADER sentence by the id ``vader.py`` gives it (``"<domain>:<row id>"``, stable across
split seeds) and the text is looked up at read time. A missing cache is prepared on first use
(pip fetches the ``vadersentiment`` sdist), the same way ``edge-clipguard data scenes`` does.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import DataError
from ..paths import default_vader_dir
from .manifest import Sample, TextRef, read_manifest
from .vader import MANIFEST_NAME, prepare_vader


@functools.lru_cache(maxsize=4)
def _vader_table(manifest: str, mtime_ns: int) -> dict[str, tuple[str, float]]:
    """id -> (sentence, score) of a prepared ``vader.jsonl`` (cached per file version)."""
    return {row.id: (row.text, row.score) for row in read_manifest(manifest) if row.id is not None}


class VaderResolver:
    """Callable ``(ref, where) -> (sentence, score)`` over the VADER cache in ``vader_dir``
    (default: ``paths.default_vader_dir()``). The cache is read, or prepared when absent and
    ``prepare`` is true, only when the first ref is resolved: manifests without refs cost nothing."""

    def __init__(self, vader_dir: str | Path | None = None, prepare: bool = True):
        self.vader_dir = Path(vader_dir) if vader_dir is not None else default_vader_dir()
        self.prepare = prepare
        self._table: dict[str, tuple[str, float]] | None = None

    def _load(self, where: str) -> dict[str, tuple[str, float]]:
        manifest = self.vader_dir / MANIFEST_NAME
        how = f"run 'edge-clipguard data vader --out {self.vader_dir}' (pip fetches the vadersentiment sdist)"
        if not manifest.is_file():
            if not self.prepare:
                raise DataError(f"{where}: text_ref needs the VADER cache, but {manifest} does not exist; {how}")
            try:
                prepare_vader(self.vader_dir)
            except DataError as exc:
                raise DataError(f"{where}: text_ref needs the VADER cache in {self.vader_dir}, which could not "
                                f"be prepared ({exc}); {how}") from None
        return _vader_table(str(manifest), manifest.stat().st_mtime_ns)

    def __call__(self, ref: TextRef, where: str) -> tuple[str, float]:
        if ref.source != "vader":
            raise DataError(f"{where}: text_ref source {ref.source!r} is not supported; expected 'vader'")
        if self._table is None:
            self._table = self._load(where)
        found = self._table.get(ref.id)
        if found is None:
            raise DataError(f"{where}: text_ref id {ref.id!r} is not in the VADER cache "
                            f"{self.vader_dir} (ids look like 'tweets:3008')")
        return found


def load_manifest(path: str | Path, num_classes: int | None = None,
                  vader_dir: str | Path | None = None, unlabeled: bool = False) -> list[Sample]:
    """Read a dataset manifest whose rows may name VADER sentences by ``text_ref``: the reader every
    command uses for users' data. The VADER cache at ``vader_dir`` (default: the user cache) is read,
    or prepared through pip, only when the first ref row is met."""
    return read_manifest(path, num_classes, resolve=VaderResolver(vader_dir), unlabeled=unlabeled)
