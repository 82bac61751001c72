"""Exception types whose message is a single line the CLI prints as-is (no traceback)."""


class ClipGuardError(Exception):
    """Base class: the message names the file/field and what was expected."""


class ConfigError(ClipGuardError):
    """A model config file is missing, malformed or has unknown keys."""


class DataError(ClipGuardError):
    """A manifest, image or dataset source is missing or malformed."""


class ExportValidationError(ClipGuardError):
    """An exported graph disagrees with PyTorch past tolerance."""
