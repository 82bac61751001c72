"""A cache of compiled models, so a second start skips the compile.

OpenVINO compiles an ONNX file for this CPU at load (about 1.1 s per shape for the base INT8 model on two
cores); importing the compiled blob takes a tenth of that. Entries live in ``cache_dir()/compiled`` (the
package's cache, ``$EDGE_CLIPGUARD_CACHE`` moves it). Turn the cache off with ``compile_cache=False``
(``Predictor.load``), ``--no-compile-cache`` (CLI) or ``EDGE_CLIPGUARD_NO_COMPILE_CACHE=1``.

Key: sha256 over everything the compiled result depends on: the artifact's own sha256 (the bytes that were
verified), the backend and its version, every compile setting and the CPU. A new bundle, another OpenVINO
version or other settings is another key, so a stale entry is never found. An entry is one file
``<key>.<sha256 of its contents>.blob``, written atomically; it is used only when its contents hash to the
name. A cache entry is not trusted: a truncated, corrupt (OpenVINO imports a blob with a flipped byte
without complaint) or unreadable entry is removed and the model compiled again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..paths import cache_dir

DISABLE_ENV = "EDGE_CLIPGUARD_NO_COMPILE_CACHE"


def cache_disabled_by_env() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class CompileCache:
    directory: Path

    @classmethod
    def from_setting(cls, setting: bool | str | os.PathLike) -> CompileCache | None:
        """``True``: the package cache's ``compiled`` folder, unless the environment turns caching off;
        a path: that folder; ``False``: no cache."""
        if setting is False or (setting is True and cache_disabled_by_env()):
            return None
        return cls(cache_dir() / "compiled" if setting is True else Path(setting))

    @staticmethod
    def key(facts: dict) -> str:
        """A key for ``facts`` (JSON-able: artifact sha256, versions, settings, CPU)."""
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:40]

    def _entries(self, key: str) -> list[Path]:
        try:
            return sorted(self.directory.glob(f"{key}.*.blob"))
        except OSError:
            return []

    def load(self, key: str) -> bytes | None:
        """The blob stored under ``key`` whose contents match its recorded hash; bad entries are removed."""
        for path in self._entries(key):
            try:
                blob = path.read_bytes()
            except OSError:
                continue
            if hashlib.sha256(blob).hexdigest() == path.name.split(".")[1]:
                return blob
            self.discard(path)
        return None

    def store(self, key: str, blob: bytes) -> Path | None:
        """Write ``blob`` under ``key`` (atomically; older entries of the key go). A cache that cannot be
        written (read-only home, full disk) is skipped: caching must never fail a load."""
        path = self.directory / f"{key}.{hashlib.sha256(blob).hexdigest()}.blob"
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(blob)
        except OSError:
            return None
        for old in self._entries(key):
            if old != path:
                self.discard(old)
        return path

    def forget(self, key: str) -> None:
        """Remove every entry of ``key`` (its blob hashed right but the backend would not import it)."""
        for path in self._entries(key):
            self.discard(path)

    def discard(self, path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass
