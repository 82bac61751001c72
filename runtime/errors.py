"""Exceptions the runtime raises for input a caller can fix; each message is one printable line.

All derive from ``ClipGuardError``, so the CLI prints them as ``edge-clipguard: error: MSG`` and
exits 2. Bundle problems reuse ``BundleError``/``IntegrityError`` from ``edge_clipguard.bundle``;
backend and feed problems reuse ``BackendError``/``InputError`` from the runner base.
"""

from __future__ import annotations

from ..bundle import BundleError, IntegrityError
from ..errors import ClipGuardError
from .backends.base import BackendError, InputError


class TextError(ClipGuardError):
    """A text input is empty, not a string, or bytes that are not UTF-8."""


class ImageError(ClipGuardError):
    """An image input is missing, empty, corrupt, too large, or an array of the wrong shape/dtype."""


class ProfileError(ClipGuardError):
    """A profile request is malformed (bad batch list, unknown precision, nothing to profile)."""


__all__ = ["BackendError", "BundleError", "ClipGuardError", "ImageError", "InputError", "IntegrityError",
           "ProfileError", "TextError"]
