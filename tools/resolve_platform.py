"""Resolve the runtime's dependencies as binary wheels for another platform, without installing anything.

Why: a device (Jetson with JetPack 6: linux aarch64, CPython 3.10, glibc 2.35) cannot build sdists on the spot, so
every runtime dependency must exist there as a wheel. ``pip download --platform ... --only-binary=:all:`` runs
pip's real resolver against the package index for that platform and fails if any requirement has no wheel.

    python tools/resolve_platform.py              # JetPack 6; extras openvino,cpu,video,sign,opencv,ray
    python tools/resolve_platform.py --extras openvino --json out.json

Prints one line per wheel (name, version, tag, MB) and the total; exit 1 when the resolve fails (pip's own
error is printed). Our own package is pure Python (py3-none-any) and is not downloaded.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_EXTRAS = "openvino,cpu,video,sign,opencv,ray"


def manylinux_tags(arch: str, glibc: str) -> list[str]:
    """Every manylinux tag a system with this glibc accepts (PEP 600), newest first, plus the legacy aliases."""
    major, minor = (int(x) for x in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    return tags + [f"manylinux2014_{arch}"]


def requirements(extras: list[str]) -> list[str]:
    """The base dependencies plus those of ``extras``, as written in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"resolve_platform: unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    return list(project["dependencies"]) + [req for extra in extras for req in optional[extra]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="aarch64")
    parser.add_argument("--glibc", default="2.35", help="the device's glibc (JetPack 6: 2.35)")
    parser.add_argument("--python", default="3.10", help="the device's CPython (JetPack 6: 3.10)")
    parser.add_argument("--extras", default=RUNTIME_EXTRAS, help=f"comma list (default {RUNTIME_EXTRAS})")
    parser.add_argument("--json", default=None, help="write the resolved wheels as JSON here")
    args = parser.parse_args(argv)
    reqs = requirements([e for e in args.extras.split(",") if e])
    abi = "cp" + args.python.replace(".", "")
    with tempfile.TemporaryDirectory() as dest:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", dest, "--only-binary=:all:",
                   "--python-version", args.python, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
                   "--abi", "none"]
        for tag in manylinux_tags(args.arch, args.glibc):
            command += ["--platform", tag]
        proc = subprocess.run(command + reqs, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr.strip()[-3000:], file=sys.stderr)
            print(f"resolve_platform: FAILED for linux {args.arch}, CPython {args.python}, glibc {args.glibc}",
                  file=sys.stderr)
            return 1
        wheels = sorted(Path(dest).glob("*.whl"))
        rows = []
        for wheel in wheels:
            name, version, *_, tag = wheel.stem.split("-")
            rows.append({"name": name, "version": version, "platform": tag, "mb": round(wheel.stat().st_size / 1e6, 2)})
    for row in rows:
        print(f"{row['name']:<32} {row['version']:<14} {row['platform']:<28} {row['mb']:>8.2f} MB")
    native = [r for r in rows if re.search(args.arch, r["platform"])]
    print(f"resolved {len(rows)} wheels ({len(native)} {args.arch}-native), {sum(r['mb'] for r in rows):.0f} MB "
          f"download, for linux {args.arch} CPython {args.python} glibc {args.glibc}, extras {args.extras}")
    if args.json:
        Path(args.json).write_text(json.dumps({"arch": args.arch, "python": args.python, "glibc": args.glibc,
                                               "extras": args.extras, "requirements": reqs, "wheels": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
