"""The runtime stays lean: no torch stack, and none of the package's training-side modules."""

import subprocess
import sys

HEAVY = ("torch", "torchvision", "transformers", "timm")
# The package's own training-side subpackages: a device app must not pay for (or depend on) them.
TRAINING_SIDE = ("edge_clipguard.model", "edge_clipguard.train", "edge_clipguard.data", "edge_clipguard.export")


def _loaded(code: str, names: tuple[str, ...]) -> str:
    script = (f"import sys\n{code}\n"
              f"print(sorted(m for m in sys.modules if any(m == n or m.startswith(n + '.') for n in {names!r})))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def _load_and_predict(bundle) -> str:
    return ("import numpy as np\nfrom edge_clipguard.runtime import Predictor\n"
            f"p = Predictor.load({str(bundle)!r}, backend='onnxruntime', device='cpu', threads=1)\n"
            "r = p.predict('a red star', np.zeros((30, 50, 3), np.uint8))\nassert 0 <= r.score <= 10\n"
            "[r] = p.predict_batch(['a red star'], [np.zeros((8, 8, 3), np.uint8)])\np.close()")


def test_importing_the_runtime_loads_no_torch():
    code = ("import edge_clipguard.runtime, edge_clipguard.contract, edge_clipguard.preprocess, "
            "edge_clipguard.text.tokenizer\nfrom edge_clipguard.runtime import Predictor")
    assert _loaded(code, HEAVY) == "[]"


def test_loading_a_bundle_and_predicting_loads_no_torch(tiny_bundle):
    assert _loaded(_load_and_predict(tiny_bundle), HEAVY) == "[]"


def test_loading_a_bundle_and_predicting_imports_no_training_side_module(tiny_bundle):
    assert _loaded(_load_and_predict(tiny_bundle), TRAINING_SIDE) == "[]"


def test_cli_command_module_loads_no_torch():
    assert _loaded("import edge_clipguard.runtime.cli, edge_clipguard.runtime.profile", HEAVY) == "[]"
