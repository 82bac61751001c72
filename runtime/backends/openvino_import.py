"""Importing OpenVINO for inference only, without its model-conversion tools.

``import openvino`` also imports ``openvino.tools.ovc`` to offer ``openvino.convert_model``; that pulls in
OpenVINO's telemetry, ``urllib``/``http.client``/``email``, ``absl.logging`` and the TensorFlow frontend helpers:
~55 of the ~90 ms the import takes (OpenVINO 2026.4, 2-core EPYC), on the path of every start, for a tool the
runtime never calls (it reads ONNX with ``Core.read_model``). OpenVINO's ``__init__`` imports it inside
``try: ... except ImportError``, so while the runtime imports OpenVINO the tools' module is marked absent in
``sys.modules`` (Python's own way to make an import fail) and the marker is removed right after. An app in the
same process keeps ``openvino.convert_model``: the module gets a PEP 562 ``__getattr__`` that imports the tools
when the name is first used. When OpenVINO was already imported (by the app, or by export), nothing changes.
"""

from __future__ import annotations

import sys
import threading

from ..errors import BackendError

INSTALL_HINT = "pip install 'edge-clipguard[openvino]'"
CONVERSION_TOOLS = "openvino.tools.ovc"
_IMPORT_LOCK = threading.Lock()
_IMPORTED: list = []  # the module, once imported


def import_openvino():
    """The ``openvino`` module, imported without its conversion tools when this is the first import. Thread-safe:
    a caller that comes while another thread imports waits for the finished module (a bare ``sys.modules`` lookup
    could hand out one still half-initialised)."""
    if _IMPORTED:
        return _IMPORTED[0]
    with _IMPORT_LOCK:
        if not _IMPORTED:
            _IMPORTED.append(_import_without_tools())
    return _IMPORTED[0]


def _import_without_tools():
    if "openvino" in sys.modules:  # the app (or export) imported it already: take it as it is
        return _import()
    sys.modules[CONVERSION_TOOLS] = None
    try:
        openvino = _import()
    finally:
        if CONVERSION_TOOLS in sys.modules and sys.modules[CONVERSION_TOOLS] is None:
            del sys.modules[CONVERSION_TOOLS]
    if "convert_model" not in vars(openvino) and "__getattr__" not in vars(openvino):
        openvino.__getattr__ = _conversion_tool_on_first_use
    return openvino


def _import():
    try:
        import openvino
    except ImportError as exc:
        raise BackendError(f"OpenVINO is not installed ({exc}); {INSTALL_HINT}") from None
    return openvino


def _conversion_tool_on_first_use(name: str):
    """``openvino.convert_model`` (and ``from openvino import convert_model``) for whoever asks later."""
    if name != "convert_model":
        raise AttributeError(f"module 'openvino' has no attribute {name!r}")
    from openvino.tools.ovc import convert_model

    sys.modules["openvino"].convert_model = convert_model
    return convert_model
