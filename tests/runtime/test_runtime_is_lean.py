import subprocess
import sys

HEAVY = ("torch", "torchvision", "transformers", "timm")


def test_importing_the_runtime_loads_no_torch():
    code = ("import sys, edge_clipguard.runtime, edge_clipguard.contract, edge_clipguard.preprocess, "
            f"edge_clipguard.text.tokenizer; print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
