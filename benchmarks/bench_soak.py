"""Soak test of one Predictor shared by many threads: errors, mismatches and resident-memory growth.

    python benchmarks/bench_soak.py [BUNDLE] [--threads 8] [--per-thread 1000] [--bad-fraction 0.3] [--tag NAME]

Without BUNDLE it exports a fresh tiny model (seeded, untrained; needs the [train] extra) to a temp folder, in
a child process, so this process holds only the lean runtime (no torch) and its memory is what a device sees.
The inputs are a fixed pool of good cases (texts of several lengths, repeated and unique; images as arrays,
PIL images, PNG and JPEG paths, odd sizes, RGBA, grey) and bad ones (empty or non-UTF-8 text, a non-string,
float/5-channel/empty arrays, a missing path, random bytes, a truncated PNG, None). Each case is first run
once on one thread: that result, or that error (type and message), is its reference. Then every thread
makes ``--per-thread`` predictions on the same Predictor, drawing cases from its own seeded stream, and each
outcome is compared with the reference:
  errors:     exceptions that are not ClipGuardError (a bug: the runtime promises one-line errors only);
  mismatches: a good case whose Result differs from its reference (exact equality of the to_dict()),
              or a bad case whose error type or message differs;
  memory:     resident set size (VmRSS) sampled every 0.2 s: start (after the reference pass), peak, end,
              and growth over the second half of the run (warm-up allocations excluded).
Prints the CPU model and a table, and writes JSON to benchmarks/results/bench_soak_<tag>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_clipguard.atomic import write_text_atomic
from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.profile import cpu_model

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TEXTS = ["a red star", "About the stars: the service was lovely and quick", "the ring is awful",
         "About the circles: " + "really " * 40 + "good", "square?", "Ünïcödé cross — très bien ✓"]


@dataclass
class Case:
    name: str
    text: Any
    image: Any
    good: bool


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 elsewhere). ``runtime.memory.rss_mb`` is MB."""
    try:
        with open("/proc/self/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def tiny_bundle(work: Path) -> Path:
    """Export a fresh seeded tiny model (as tests/conftest.py's tiny_bundle does)."""
    import torch

    from edge_clipguard.config import load_config
    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest
    from edge_clipguard.model import build_model
    from edge_clipguard.text.tokenizer import default_tokenizer
    from edge_clipguard.train.checkpoint import save_checkpoint

    cfg = load_config("tiny")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    checkpoint = save_checkpoint(work / "tiny.pt", model=model, model_cfg=cfg,
                                 tokenizer_json=default_tokenizer(cfg.text.max_length).to_str(), step=0, epoch=0)
    out = work / "tiny_fp32"
    export_bundle(ExportRequest(checkpoint=str(checkpoint), out=str(out), engine="never"), log=lambda *_: None)
    return out


def make_cases(work: Path, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)

    def pixels(h: int, w: int, c: int = 3) -> np.ndarray:
        return rng.integers(0, 256, (h, w, c) if c else (h, w), dtype=np.uint8)

    png, jpeg = work / "photo.png", work / "photo.jpg"
    Image.fromarray(pixels(120, 200)).save(png)
    Image.fromarray(pixels(333, 97)).save(jpeg, quality=90)
    truncated = work / "truncated.png"
    truncated.write_bytes(png.read_bytes()[:300])
    garbage = work / "garbage.jpg"
    garbage.write_bytes(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    buffer = io.BytesIO()
    Image.fromarray(pixels(50, 70)).save(buffer, format="PNG")
    good_images = [("array", pixels(48, 80)), ("pil", Image.fromarray(pixels(90, 40))), ("png", str(png)),
                   ("jpeg", str(jpeg)), ("rgba", pixels(64, 64, 4)), ("grey", pixels(31, 57, 0)),
                   ("tiny", pixels(1, 1)), ("wide", pixels(20, 900)),
                   ("pil-png", Image.open(io.BytesIO(buffer.getvalue())))]
    cases = [Case(f"good:{name}:{t}", TEXTS[t], image, True)
             for name, image in good_images for t in range(len(TEXTS))]
    bad = [("empty-text", "", pixels(32, 32)), ("not-utf8", b"\xff\xfe bad", pixels(32, 32)),
           ("non-string", 12345, pixels(32, 32)), ("float-array", "a red star", rng.random((32, 32, 3))),
           ("five-channels", "a red star", pixels(32, 32, 5)), ("empty-array", "a red star", pixels(0, 10)),
           ("missing-path", "a red star", str(work / "nope.png")), ("garbage-bytes", "a red star", str(garbage)),
           ("truncated-png", "a red star", str(truncated)), ("none-image", "a red star", None)]
    cases += [Case(f"bad:{name}", text, image, False) for name, text, image in bad]
    return cases


def outcome(predictor: Predictor, case: Case) -> tuple[str, Any]:
    """("ok", result dict) | ("refused", "Type: message") | ("error", "Type: message")."""
    try:
        return "ok", predictor.predict(case.text, case.image).to_dict()
    except ClipGuardError as exc:
        return "refused", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - counting them is the point
        return "error", f"{type(exc).__name__}: {exc}"


def soak(predictor: Predictor, cases: list[Case], reference: list[tuple[str, Any]], threads: int, per_thread: int,
         bad_fraction: float, seed: int) -> dict:
    good = [i for i, c in enumerate(cases) if c.good]
    bad = [i for i, c in enumerate(cases) if not c.good]
    counts = {"predictions": 0, "good": 0, "bad": 0, "errors": 0, "mismatches": 0}
    examples: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    samples: list[tuple[float, float, int]] = []  # (seconds, rss MiB, predictions so far)
    started = time.perf_counter()

    def sampler() -> None:
        while not done.wait(0.2):
            samples.append((time.perf_counter() - started, rss_mib(), counts["predictions"]))

    def worker(index: int) -> None:
        rng = random.Random(f"soak:{seed}:{index}")
        local = {"predictions": 0, "good": 0, "bad": 0, "errors": 0, "mismatches": 0}
        for _ in range(per_thread):
            i = rng.choice(bad) if rng.random() < bad_fraction else rng.choice(good)
            got = outcome(predictor, cases[i])
            local["predictions"] += 1
            local["good" if cases[i].good else "bad"] += 1
            if got[0] == "error":
                local["errors"] += 1
            if got != reference[i]:
                local["mismatches"] += 1
                with lock:
                    if len(examples) < 5:
                        examples.append(f"{cases[i].name}: got {str(got)[:160]} expected {str(reference[i])[:160]}")
            if local["predictions"] % 50 == 0:
                with lock:
                    counts["predictions"] += 50
        with lock:
            counts["predictions"] += local["predictions"] % 50
            for key in ("good", "bad", "errors", "mismatches"):
                counts[key] += local[key]

    watcher = threading.Thread(target=sampler, daemon=True)
    rss_start = rss_mib()
    watcher.start()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    rss_end = rss_mib()
    total = counts["predictions"]
    half = next((rss for _, rss, n in samples if n >= total / 2), rss_start)
    return {**counts, "seconds": round(seconds, 2), "predictions_per_s": round(total / seconds, 1),
            "rss_start_mib": round(rss_start, 1), "rss_peak_mib": round(max([rss_end] + [s[1] for s in samples]), 1),
            "rss_end_mib": round(rss_end, 1), "rss_growth_mib": round(rss_end - rss_start, 1),
            "rss_growth_second_half_mib": round(rss_end - half, 1), "mismatch_examples": examples,
            "rss_samples": [(round(t, 1), round(r, 1), n) for t, r, n in samples[:: max(1, len(samples) // 50)]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", help="bundle directory (default: export a fresh tiny model)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=1000, help="predictions per thread")
    parser.add_argument("--bad-fraction", type=float, default=0.3, help="share of predictions given a bad input")
    parser.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime intra-op threads of the Predictor")
    parser.add_argument("--precision", default=None, help="artifact precision (default: best for the CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default=None, help="results file suffix (default: the bundle's config name)")
    parser.add_argument("--json", default=None, help="results file (default: benchmarks/results/bench_soak_<tag>.json)")
    parser.add_argument("--build-tiny-into", default=None, help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args(argv)
    if args.build_tiny_into:
        print(tiny_bundle(Path(args.build_tiny_into)))
        return 0
    print(f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs), python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench_soak_") as tmp:
        work = Path(tmp)
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            child = subprocess.run([sys.executable, __file__, "--build-tiny-into", str(work)], capture_output=True,
                                   text=True, check=True)
            bundle = Path(child.stdout.strip().splitlines()[-1])
        cases = make_cases(work, args.seed)
        try:
            predictor = Predictor.load(bundle, backend="onnxruntime", device="cpu", precision=args.precision,
                                       threads=args.ort_threads)
        except ClipGuardError as exc:
            print(f"bench_soak: error: {exc}", file=sys.stderr)
            return 2
        with predictor:
            reference = [outcome(predictor, case) for case in cases]
            unexpected = [(c.name, r) for c, r in zip(cases, reference) if (r[0] == "ok") != c.good]
            if unexpected:
                print(f"bench_soak: error: reference outcomes disagree with the case labels: {unexpected[:3]}",
                      file=sys.stderr)
                return 2
            stats = soak(predictor, cases, reference, args.threads, args.per_thread, args.bad_fraction, args.seed)
            artifact = predictor.describe()
            config = predictor.manifest.config_name
    rows = [("artifact", artifact), ("threads x predictions", f"{args.threads} x {args.per_thread}"),
            ("good / bad inputs", f"{stats['good']} / {stats['bad']} ({len(cases)} distinct cases)"),
            ("errors (non-ClipGuardError)", stats["errors"]), ("mismatches vs single-thread", stats["mismatches"]),
            ("wall time", f"{stats['seconds']} s ({stats['predictions_per_s']} predictions/s)"),
            ("RSS start / peak / end",
             f"{stats['rss_start_mib']} / {stats['rss_peak_mib']} / {stats['rss_end_mib']} MiB"),
            ("RSS growth (whole run / 2nd half)",
             f"{stats['rss_growth_mib']} / {stats['rss_growth_second_half_mib']} MiB")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    for example in stats["mismatch_examples"]:
        print(f"  mismatch: {example}")
    path = Path(args.json) if args.json else RESULTS_DIR / f"bench_soak_{args.tag or config}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
               "bundle": str(args.bundle) if args.bundle else "fresh tiny model (seed 0)", "artifact": artifact,
               "args": {k: v for k, v in vars(args).items() if k not in ("json",)}, **stats}
    print(f"json: {write_text_atomic(path, json.dumps(payload, indent=2) + chr(10))}")
    return 1 if stats["errors"] or stats["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
