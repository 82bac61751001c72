"""The layer contracts in pyproject.toml ([tool.importlinter]), checked by import-linter itself.

lint-imports finds a package's modules by walking its folder, and this package's runtime and export live in
the top-level runtime/ and export/ folders (pyproject's package-dir), so the test mirrors the package into one
folder of symlinks (a copy of the tree's shape, the files linked) and runs lint-imports there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture()
def mirror(tmp_path):
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (the [dev] extra)")
    package = tmp_path / "edge_clipguard"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "edge_clipguard", package, copy_function=os.symlink, ignore=ignore)
    for name in ("runtime", "export"):
        shutil.copytree(ROOT / name, package / name, copy_function=os.symlink, ignore=ignore)
    shutil.copyfile(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run([str(LINT_IMPORTS)], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_every_layer_contract_is_kept(mirror):
    proc = _lint(mirror)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


def test_a_runtime_module_importing_torch_breaks_the_runtime_contract(mirror):
    (mirror / "edge_clipguard" / "runtime" / "planted.py").write_text("import torch\n")
    proc = _lint(mirror)
    assert proc.returncode != 0
    assert "edge_clipguard.runtime.planted -> torch" in proc.stdout and "1 broken" in proc.stdout
