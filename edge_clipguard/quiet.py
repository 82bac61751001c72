"""Third-party noise, silenced where it is caused, so a command prints only its own lines.

Some libraries talk on import or on use in ways the user cannot act on: importing ModelOpt makes
torch log "No CUDA runtime is found, using CUDA_HOME=..." and raises a TorchScript FutureWarning and
a "transformers X is not tested" UserWarning; ``mtq.quantize`` prints "Inserted N quantizers".
Each call site that triggers such noise wraps just that call in ``third_party_noise`` (naming the
loggers and warnings it expects), so nothing is filtered globally and a warning from anywhere else
still shows. ``-v/--verbose`` on the command line (``set_verbose(True)``) lets it all through.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

_verbose = False


def set_verbose(on: bool) -> None:
    """``-v``: show third-party warnings, log lines and prints again."""
    global _verbose
    _verbose = bool(on)


def is_verbose() -> bool:
    return _verbose


@contextlib.contextmanager
def third_party_noise(*, messages: tuple[str, ...] = (), loggers: tuple[str, ...] = (),
                      stdout: bool = False) -> Iterator[None]:
    """Inside the block: drop warnings whose message matches one of ``messages`` (regexes matched at
    the start; ``""`` matches every warning), log records below ERROR from ``loggers``, and with
    ``stdout`` anything printed. A no-op when verbose."""
    if _verbose:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in loggers}
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        if stdout:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
