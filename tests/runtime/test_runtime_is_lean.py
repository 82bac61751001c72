import subprocess
import sys

HEAVY = ("torch", "torchvision", "transformers", "timm")


def _heavy_loaded(code: str) -> str:
    script = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_importing_the_runtime_loads_no_torch():
    code = ("import edge_clipguard.runtime, edge_clipguard.contract, edge_clipguard.preprocess, "
            "edge_clipguard.text.tokenizer\nfrom edge_clipguard.runtime import Predictor")
    assert _heavy_loaded(code) == "[]"


def test_loading_a_bundle_and_predicting_loads_no_torch(tiny_bundle):
    code = ("import numpy as np\nfrom edge_clipguard.runtime import Predictor\n"
            f"p = Predictor.load({str(tiny_bundle)!r}, backend='onnxruntime', device='cpu', threads=1)\n"
            "r = p.predict('a red star', np.zeros((30, 50, 3), np.uint8))\nassert 0 <= r.score <= 10")
    assert _heavy_loaded(code) == "[]"


def test_cli_command_module_loads_no_torch():
    assert _heavy_loaded("import edge_clipguard.runtime.cli_commands, edge_clipguard.runtime.profile") == "[]"
