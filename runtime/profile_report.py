"""Turn a ProfileReport into a table (stdout), a JSON file and an optional PNG chart; writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path, write_text_atomic
from .layer_report import format_layers
from .profile_types import STAGES, ProfileReport, ProfileRow

_COLUMNS = (("artifact", 22, "<"), ("backend", 12, "<"), ("device", 6, "<"), ("prec", 5, "<"), ("batch", 5, ">"),
            ("tok", 7, ">"), ("pre", 7, ">"), ("infer", 8, ">"), ("inf p90", 8, ">"), ("dec", 7, ">"),
            ("e2e p50", 8, ">"), ("p90", 8, ">"), ("p99", 8, ">"), ("mean", 8, ">"), ("ovh", 7, ">"),
            ("samples/s", 10, ">"), ("RSS MB", 7, ">"), ("peak MB", 8, ">"))


def _cells(row: ProfileRow) -> list[str]:
    head = [row.name, row.backend, row.device, row.precision, str(row.batch or "-")]
    if row.e2e is None:
        return head
    s = row.stages
    stages = [s[name].p50 if name in s else None for name in ("tokenize", "preprocess", "infer")]
    stages += [s["infer"].p90 if "infer" in s else None, s["decode"].p50 if "decode" in s else None]
    nums = [*stages, row.e2e.p50, row.e2e.p90, row.e2e.p99, row.e2e.mean, row.overhead_ms]
    memory = [row.rss_mb, row.peak_rss_mb]
    return (head + ["-" if v is None else f"{v:.2f}" for v in nums] + [f"{row.throughput:.1f}"]
            + ["-" if v is None else f"{v:.0f}" for v in memory])


def format_table(report: ProfileReport) -> str:
    """Fixed-width table: stage p50s, infer p90, e2e p50/p90/p99/mean, overhead (ms) and throughput."""
    header = " ".join(f"{name:{align}{width}}" for name, width, align in _COLUMNS)
    lines = [header, "-" * len(header)]
    for row in report.rows:
        cells = _cells(row)
        text = " ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, _COLUMNS))
        lines.append(text + (f"  {row.note}" if row.note else ""))
    env = report.environment
    lines.append(f"ms, medians unless named; ovh = e2e - infer; {env.get('threads')} CPU threads on "
                 f"{env.get('cpu_model', '?')}; {report.request.get('iters')} iters after "
                 f"{report.request.get('warmup')} warm-up; RSS = resident memory after the row, peak = process peak")
    if report.startup:
        lines += ["", "time to first prediction of a fresh process (s): spawn -> first result = interpreter + imports"
                      " + Predictor.load + first predict (compile or cache import + inference)"]
        for row in report.startup:
            compiled = ", ".join(f"{variant} {source} {seconds:.2f}" for variant, source, seconds in row.compiled)
            lines.append(f"{row.name:<22} {row.backend:<12} {row.precision:<5} {row.start:<13} {row.seconds:6.2f} "
                         f"= {row.start_s:.2f} + {row.load_s:.2f} + {row.first_predict_s:.2f}"
                         + (f"  [{compiled}]" if compiled else ""))
    if report.layers:
        lines += ["", "OpenVINO per-node profiling (PERF_COUNT; kernel suffix = the precision it computes in):"]
        for layer_report in report.layers:
            lines += format_layers(layer_report)
    return "\n".join(lines)


def write_json(report: ProfileReport, path: str | Path) -> Path:
    return write_text_atomic(path, json.dumps(report.to_dict(), indent=2) + "\n")


def write_plot(report: ProfileReport, path: str | Path) -> str:
    """Stacked bars of stage medians per row; returns a message (also when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"plot not written: matplotlib is not installed (pip install matplotlib) — {path} skipped"
    rows = [r for r in report.rows if r.e2e is not None and r.stages]  # stream rows have no stages
    if not rows:
        return f"plot not written: no measured rows — {path} skipped"
    labels = [f"{r.name} [{r.backend}/{r.device}] b={r.batch}" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(rows)))
    left = [0.0] * len(rows)
    for stage in STAGES:
        widths = [r.stages[stage].p50 for r in rows]
        ax.barh(labels, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths)]
    ax.set_xlabel("median latency per batch (ms)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title("edge-clipguard profile: stage medians")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return f"plot: {path}"
