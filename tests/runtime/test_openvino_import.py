"""The runtime imports OpenVINO without its model-conversion tools, and an app keeps ``openvino.convert_model``.

Each check runs in a fresh interpreter: whether the tools get imported depends on OpenVINO not being imported yet."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("openvino")


def _fresh(script: str) -> str:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()


def test_the_runtime_imports_openvino_without_its_conversion_tools():
    out = _fresh("import sys\n"
                 "from edge_clipguard.runtime.backends.openvino_import import import_openvino\n"
                 "ov = import_openvino()\n"
                 "tools = 'openvino.tools.ovc'\n"
                 "print(hasattr(ov, 'Core'), tools in sys.modules, sys.modules.get(tools, 0))")
    assert out == "True False 0"


def test_convert_model_still_imports_for_an_app_after_the_runtime_imported_openvino():
    out = _fresh("from edge_clipguard.runtime.backends.openvino_import import import_openvino\n"
                 "ov = import_openvino()\n"
                 "from openvino import convert_model\n"
                 "from openvino.tools.ovc import convert_model as tool\n"
                 "print(convert_model is tool, ov.convert_model is tool)")
    assert out == "True True"


def test_an_app_that_imported_openvino_first_keeps_it_as_it_was():
    out = _fresh("import openvino\n"
                 "from edge_clipguard.runtime.backends.openvino_import import import_openvino\n"
                 "print(import_openvino() is openvino, 'convert_model' in vars(openvino), "
                 "'__getattr__' in vars(openvino))")
    assert out == "True True False"


def test_an_unknown_openvino_attribute_is_still_an_attribute_error():
    out = _fresh("from edge_clipguard.runtime.backends.openvino_import import import_openvino\n"
                 "ov = import_openvino()\n"
                 "try:\n    ov.no_such_thing\nexcept AttributeError as exc:\n    print(exc)")
    assert out == "module 'openvino' has no attribute 'no_such_thing'"


def test_a_missing_openvino_is_one_line_naming_the_extra_when_a_bundle_loads(tiny_bundle):
    # OpenVINO is imported on a second thread while the bundle's bytes are read; its failure must still reach the
    # caller as the backend's one-line error, not vanish with the thread or crash it.
    script = ("import sys\n"
              "sys.modules['openvino'] = None\n"
              "from edge_clipguard.runtime import Predictor\n"
              "from edge_clipguard.runtime.errors import BackendError\n"
              "try:\n"
              f"    Predictor.load({str(tiny_bundle)!r}, backend='openvino', device='cpu')\n"
              "except BackendError as exc:\n"
              "    print(exc)\n")
    out = _fresh(script)
    assert out.startswith("OpenVINO is not installed") and "edge-clipguard[openvino]" in out
    assert len(out.splitlines()) == 1


def test_threads_that_import_openvino_together_all_get_the_finished_module():
    out = _fresh("import threading\n"
                 "from edge_clipguard.runtime.backends.openvino_import import import_openvino\n"
                 "start, got = threading.Barrier(8), []\n"
                 "def run():\n"
                 "    start.wait()\n"
                 "    module = import_openvino()\n"
                 "    got.append((id(module), hasattr(module, 'Core'), hasattr(module, 'get_version')))\n"
                 "threads = [threading.Thread(target=run) for _ in range(8)]\n"
                 "[t.start() for t in threads]; [t.join() for t in threads]\n"
                 "print(len(got), len(set(got)), all(core and version for _, core, version in got))")
    assert out == "8 1 True"
