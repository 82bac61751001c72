"""``profile --layers``: where an OpenVINO inference spends its time, node by node, and how much of it is int8.

Why: "INT8" on a file says nothing about what runs in int8. OpenVINO's per-node profiling (``PERF_COUNT``)
names the kernel each node ran (``exec_type``, whose suffix is the precision it computed in), so the share
of time in int8 kernels -- and the float nodes that hold it back -- can be read off one compiled model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class KernelTime:
    """Time of every node of one (node type, kernel) pair, e.g. ("Convolution", "brgconv_avx512_1x1_I8")."""

    node_type: str
    exec_type: str
    nodes: int
    ms: float
    int8: bool


@dataclass(frozen=True)
class LayerReport:
    """One artifact's per-node profile at one shape: total node time, its int8 share, the heaviest kernels."""

    name: str
    backend: str
    precision: str
    batch: int
    total_ms: float
    int8_share: float
    kernels: tuple[KernelTime, ...]  # heaviest first
    parts: tuple[tuple[str, float, float], ...]  # (model part, ms, int8 share of it), heaviest first
    float_nodes: tuple[tuple[str, str, str, float], ...]  # the heaviest nodes not in int8: (name, type, kernel, ms)


def summarize_layers(layers, name: str, backend: str, precision: str, batch: int, top: int) -> LayerReport:
    """Group ``LayerTime``s (OpenVinoRunner.profile_layers) by kernel; keep the ``top`` heaviest of each list."""
    grouped: dict[tuple[str, str], list] = defaultdict(list)
    for layer in layers:
        grouped[(layer.node_type, layer.exec_type)].append(layer)
    kernels = sorted((KernelTime(kind, exec_type, len(group), sum(g.ms for g in group), group[0].int8)
                      for (kind, exec_type), group in grouped.items()), key=lambda k: -k.ms)
    total = sum(layer.ms for layer in layers)
    int8 = sum(layer.ms for layer in layers if layer.int8)
    floats = sorted((layer for layer in layers if not layer.int8), key=lambda layer: -layer.ms)[:top]
    by_part: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for layer in layers:
        entry = by_part[model_part(layer)]
        entry[0] += layer.ms
        entry[1] += layer.ms if layer.int8 else 0.0
    parts = sorted(((part, ms, i8 / ms if ms else 0.0) for part, (ms, i8) in by_part.items()), key=lambda p: -p[1])
    return LayerReport(name, backend, precision, batch, total, int8 / total if total else 0.0, tuple(kernels[:top]),
                       tuple(parts), tuple((f.name, f.node_type, f.exec_type, f.ms) for f in floats))


def model_part(layer) -> str:
    """The model part a node belongs to, from the module path the exporter names nodes by
    ("/model/text_tower/bert/encoder/..." -> "text_tower"), looked for in the node's own name and then in the
    names of the nodes OpenVINO fused into it; nodes of no module (input conversion, the decoder's TopK) are
    "other"."""
    for name in [layer.name, *layer.sources.split(",")]:
        pieces = [p for p in name.strip().split("/") if p]
        if len(pieces) >= 3 and pieces[0] == "model":
            return pieces[1]
    return "other"


def format_layers(report: LayerReport) -> list[str]:
    lines = [f"{report.name} ({report.backend}, {report.precision}, batch {report.batch}): node time "
             f"{report.total_ms:.2f} ms, {100 * report.int8_share:.0f} % of it in int8 kernels",
             f"  {'ms':>7} {'share':>6} {'nodes':>5}  kernel"]
    for k in report.kernels:
        share = 100 * k.ms / report.total_ms if report.total_ms else 0.0
        lines.append(f"  {k.ms:7.2f} {share:5.1f}% {k.nodes:5d}  {k.node_type} / {k.exec_type}"
                     + ("" if k.int8 else "  (float)"))
    lines.append("  by model part: " + ", ".join(f"{part} {ms:.2f} ms ({100 * i8:.0f} % int8)"
                                                for part, ms, i8 in report.parts))
    if report.float_nodes:
        lines.append("  heaviest nodes not in int8:")
        lines += [f"  {ms:7.2f}        {kind} / {kernel}  {name}" for name, kind, kernel, ms in report.float_nodes]
    return lines
