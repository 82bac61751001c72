"""Exceptions the runtime raises for input a caller can fix; each message is one printable line.

All derive from ``ClipGuardError``, so the CLI prints them as ``edge-clipguard: error: MSG`` and
exits 2. The runtime's own errors are defined here. Three come from the neutral modules the
runtime shares with export and training, and are re-exported so an app imports every error from
one place: ``BundleError``/``IntegrityError`` (the bundle contract), ``ImageError`` (the shared
image loader) and ``CudaError`` (the shared CUDA helpers).
"""

from __future__ import annotations

from ..bundle import BundleError, IntegrityError
from ..errors import ClipGuardError, CudaError, ImageError


class BackendError(ClipGuardError):
    """A backend cannot load or run an artifact (missing library, wrong GPU, bad engine, ...)."""


class InputError(ClipGuardError):
    """A feed does not match the graph's input names, dtypes or shapes."""


class TextError(ClipGuardError):
    """A text input is empty, not a string, or bytes that are not UTF-8."""


class ProfileError(ClipGuardError):
    """A profile request is malformed (bad batch list, unknown precision, nothing to profile)."""


class ServeError(ClipGuardError):
    """``serve`` cannot start or keep serving (PyTriton missing, port taken, Python without a shared libpython, ...)."""


__all__ = ["BackendError", "BundleError", "ClipGuardError", "CudaError", "ImageError", "InputError",
           "IntegrityError", "ProfileError", "ServeError", "TextError"]
