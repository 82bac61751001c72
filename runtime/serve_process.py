"""serve's process setup, apart from the server: Triton's Python backend needs a shared libpython it can load,
and its ports must be free before it starts (so a taken port is our one line, not Triton's log).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from .errors import ServeError


# ---- the libpython trap ------------------------------------------------------------------------
def own_libpython() -> Path:
    """This interpreter's shared libpython (may not exist: a static build has none)."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY") or ""
    return Path(libdir) / soname


def use_own_libpython(environ: dict | None = None) -> str:
    """Put this interpreter's libpython directory first on LD_LIBRARY_PATH (tritonserver and PyTriton's
    Python-backend stub inherit it); raise ServeError saying why and what to do when there is none."""
    environ = os.environ if environ is None else environ
    lib = own_libpython()
    version = ".".join(map(str, sys.version_info[:3]))
    if not lib.name.startswith("libpython") or not lib.is_file() or lib.suffix == ".a":
        raise ServeError(
            f"serve cannot run on this Python ({sys.executable}, {version}): it has no shared libpython "
            f"({lib} missing), and PyTriton's Python-backend stub would load another libpython and fail "
            "(\"'_thread.RLock' object has no attribute '_recursion_count'\", pytriton issue 51). Use a Python "
            "built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install "
            f"{version}) or the distribution's python3 with its libpython package")
    libdir = str(lib.parent)
    parts = [p for p in environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if not parts or parts[0] != libdir:
        environ["LD_LIBRARY_PATH"] = ":".join([libdir, *parts])
    return f"LD_LIBRARY_PATH starts with {libdir} ({lib.name} of Python {version})"


def stub_libpython(stub: Path, environ: Mapping[str, str]) -> Path | None:
    """The libpython the dynamic loader gives ``stub`` under ``environ`` (via ldd); None if ldd cannot say."""
    ldd = shutil.which("ldd")
    if not ldd or not stub.is_file():
        return None
    try:
        out = subprocess.run([ldd, str(stub)], env=dict(environ), capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if name.startswith("libpython"):
            path = rest.split(" (")[0].strip()
            return Path(path) if path.startswith("/") else Path("not found")
    return None


def check_stub_libpython(environ: Mapping[str, str]) -> None:
    """After ``use_own_libpython``: refuse when the loader would still hand the stub another libpython."""
    try:
        from pytriton.utils.distribution import get_stub_path
        stub = Path(get_stub_path(f"{sys.version_info[0]}.{sys.version_info[1]}"))
    except Exception:  # an internal of PyTriton; without it, the startup error still carries the hint
        return
    found = stub_libpython(stub, environ)
    if found is not None and (not found.exists() or found.resolve() != own_libpython().resolve()):
        raise ServeError(f"PyTriton's Python-backend stub would load {found}, not this interpreter's "
                         f"{own_libpython()}, even with LD_LIBRARY_PATH set; it would fail to start (pytriton "
                         "issue 51). Run serve with a Python whose shared libpython the stub can load")


def _startup_hint(text: str) -> str:
    if "_recursion_count" in text:
        return (" — the Python-backend stub loaded another libpython than this interpreter's (pytriton issue 51); "
                f"check that {own_libpython()} exists and LD_LIBRARY_PATH is not overridden")
    return ""


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln or "failed" in ln]
    return (errors[-1] if errors else (lines[-1] if lines else "unknown error"))[:300]


# ---- ports and predictors ----------------------------------------------------------------------
def check_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """Fail fast (rather than after Triton's startup timeout) when a port is taken."""
    for flag, port in ports.items():
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except socket.gaierror as exc:
            raise ServeError(f"--host {host}: not an address this machine can listen on ({exc})") from None
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise ServeError(f"{flag} {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                                 f"pick a free port with {flag}") from None
