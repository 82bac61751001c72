"""Exception types whose message is a single line the CLI prints as-is (no traceback)."""


class ClipGuardError(Exception):
    """Base class: the message names the file/field and what was expected."""


class ConfigError(ClipGuardError):
    """A model config file is missing, malformed or has unknown keys."""


class DataError(ClipGuardError):
    """A manifest, image or dataset source is missing or malformed."""


class ExportValidationError(ClipGuardError):
    """An exported graph disagrees with PyTorch past tolerance."""


class ImageError(DataError):
    """An image is missing, empty, corrupt, too large, or an array of the wrong shape/dtype.

    Defined here, not in the runtime, because training, export and the runtime read images
    through the same loader (``edge_clipguard.image_io``)."""


class CudaError(ClipGuardError):
    """cuda-python is missing, no GPU is visible, or a CUDA runtime call failed."""
