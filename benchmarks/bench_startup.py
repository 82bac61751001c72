"""Time to the first prediction of a fresh process, this source tree against another revision's, one run.

    git worktree add /tmp/before 10b26c0
    python benchmarks/bench_startup.py BUNDLE --before-tree /tmp/before --repeats 21 --tag this_session

Each start is a new Python process (``edge_clipguard.runtime.startup``'s child: import the runtime, load the bundle
with one artifact, predict one 640x480 frame with a short text) timed from spawn to its first result (not to its
exit), with the child's own
split: interpreter + imports / ``Predictor.load`` / first ``predict``. Per tree: one first start on an empty
compile cache (its own temporary folder), then ``--repeats`` second starts on the cache that start filled. The
trees' second starts alternate (this, before, this, ...), so machine noise hits both alike: compare the ratio.
``--before-tree``: a source tree of another revision (a ``git worktree``); its child runs with PYTHONPATH pointing
at a package folder assembled from that tree, so the same interpreter and libraries run the other code. The other
revision's child protocol must be this one's (it is from schema 3 on). Without it, only this tree is timed.
Bytecode: both trees' package views are byte-compiled (``compileall``) before any start, as
an installed package is (pip byte-compiles at install); otherwise, where PYTHONDONTWRITEBYTECODE is set (this box
sets it), every start would compile every module of the package from source (~0.04 s).
Prints the CPU model; writes JSON to benchmarks/results/bench_startup_<tag>.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from edge_clipguard.atomic import write_text_atomic
from edge_clipguard.runtime.errors import ProfileError
from edge_clipguard.runtime.profile import cpu_model
from edge_clipguard.runtime.startup import run_child

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
# Where each top-level source folder sits inside the installed package (pyproject's package-dir).
PACKAGE_DIRS = {"edge_clipguard": "", "runtime": "runtime", "export": "export"}


def package_view(tree: Path, into: Path) -> Path:
    """A folder holding an ``edge_clipguard`` package made of ``tree``'s sources (symlinks): put it on PYTHONPATH
    and ``import edge_clipguard`` runs that revision. Python's path finder runs before the editable install's
    finder, so this copy wins."""
    package = into / "edge_clipguard"
    package.mkdir(parents=True)
    for entry in (tree / "edge_clipguard").iterdir():
        (package / entry.name).symlink_to(entry)
    for source, inside in PACKAGE_DIRS.items():
        if inside:
            (package / inside).symlink_to(tree / source)
    return into


# The child both trees run: their own ``startup._child`` (load, one prediction), with the first prediction's
# result stamped here the same way for both (a revision from before the stamp was added would otherwise be timed
# to its process exit, ~0.08 s later).
STAMPED_CHILD = """
import json, sys, time
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.startup import _child
stamp, predict = {}, Predictor.predict
def stamped(self, *args, **kwargs):
    result = predict(self, *args, **kwargs)
    stamp.setdefault("result_at", time.monotonic())
    return result
Predictor.predict = stamped
print(json.dumps({**_child(json.loads(sys.argv[1])), **stamp}))
"""


def byte_compile(view: Path) -> None:
    """Write the bytecode of a package view's sources where its children look for it: ``__pycache__`` beside the
    symlinks of the top-level modules (in the view) and inside the linked ``runtime``/``export`` folders (in the
    tree, ignored by git)."""
    compileall.compile_dir(view, quiet=1)


def timed_start(job: dict, cache: str, env: dict | None, cwd: str) -> dict:
    """One fresh start, run in ``cwd`` (a folder holding no source tree: with ``python -c`` the working folder
    comes first on the import path, so a child started in this checkout imported this checkout's package
    whatever PYTHONPATH said, and the trees compared before this was fixed were the same tree)."""
    seconds, child = run_child({**job, "cache": cache}, env=env, code=STAMPED_CHILD, cwd=cwd)
    return {"seconds": seconds, "start_s": seconds - child["load_s"] - child["first_predict_s"],
            "load_s": child["load_s"], "first_predict_s": child["first_predict_s"], "compiled": child["compiled"]}


def summary(starts: list[dict]) -> dict:
    return {key: statistics.median(s[key] for s in starts) for key in ("seconds", "start_s", "load_s",
                                                                     "first_predict_s")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--before-tree", type=Path, help="another revision's source tree (e.g. a git worktree)")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--artifact", default="model.int8.onnx")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="second starts per tree (default 7)")
    parser.add_argument("--tag", default="run")
    args = parser.parse_args(argv)
    if args.before_tree is not None and not (args.before_tree / "edge_clipguard" / "__init__.py").is_file():
        print(f"bench_startup: --before-tree {args.before_tree}: expected a source tree with edge_clipguard/, "
              "runtime/ and export/ (e.g. a git worktree)", file=sys.stderr)
        return 2
    job = {"bundle": str(Path(args.bundle).resolve()), "backend": args.backend, "device": "cpu",
           "artifact": args.artifact, "precision": args.precision, "threads": args.threads, "verify_key": None,
           "options": {}}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        # Both trees are imported the same way (a package folder on PYTHONPATH), so neither pays for the other's
        # import machinery (an editable install's finder is slower than a plain folder on the path).
        sources = {"this tree": REPO} | ({"before": args.before_tree.resolve()} if args.before_tree else {})
        trees = {name: {**os.environ, "PYTHONPATH": str(package_view(tree, Path(work) / f"view{i}"))}
                 for i, (name, tree) in enumerate(sources.items())}
        for env in trees.values():
            byte_compile(Path(env["PYTHONPATH"]))
        caches = {name: tempfile.mkdtemp(dir=work) for name in trees}
        try:
            first = {name: timed_start(job, caches[name], env, work) for name, env in trees.items()}
            second: dict[str, list[dict]] = {name: [] for name in trees}
            for _ in range(args.repeats):
                for name, env in trees.items():
                    second[name].append(timed_start(job, caches[name], env, work))
        except ProfileError as exc:  # the child's last line, e.g. the bundle is not one
            print(f"bench_startup: {exc}", file=sys.stderr)
            return 2
    report = {"cpu": cpu_model(), "bundle": args.bundle, "artifact": args.artifact, "backend": args.backend,
              "threads": args.threads, "repeats": args.repeats,
              "trees": {name: {"first_start": first[name], "second_starts": second[name],
                               "second_start_median": summary(second[name])} for name in trees}}
    print(f"time to first prediction, {args.backend} {args.artifact}, {args.threads} threads, {cpu_model()}")
    print(f"{'tree':10} {'first start s':>14} {'second start s':>15} {'= start':>8} {'+ load':>7} {'+ first':>8}")
    for name in trees:
        med = report["trees"][name]["second_start_median"]
        print(f"{name:10} {first[name]['seconds']:14.3f} {med['seconds']:15.3f} {med['start_s']:8.3f} "
              f"{med['load_s']:7.3f} {med['first_predict_s']:8.3f}")
    if "before" in trees:
        ratio = (report["trees"]["before"]["second_start_median"]["seconds"]
                 / report["trees"]["this tree"]["second_start_median"]["seconds"])
        report["second_start_speedup"] = ratio
        print(f"second start: this tree {ratio:.2f}x faster than before (medians of {args.repeats}, interleaved)")
    out = RESULTS / f"bench_startup_{args.tag}.json"
    write_text_atomic(out, json.dumps(report, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
