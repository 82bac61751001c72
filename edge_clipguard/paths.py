"""Where cached downloads and prepared datasets live by default."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$EDGE_CLIPGUARD_CACHE``, else ``$XDG_CACHE_HOME/edge-clipguard``, else ``~/.cache/edge-clipguard``."""
    explicit = os.environ.get("EDGE_CLIPGUARD_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-clipguard"


def default_vader_dir() -> Path:
    return cache_dir() / "vader"
