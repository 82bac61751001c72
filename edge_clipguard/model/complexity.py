"""Parameters and FLOPs per part of a model, so people can choose between configs (tiny, small, base, a student).

FLOPs are counted by PyTorch's FlopCounterMode on one forward pass at batch 1 (matmuls and convolutions,
2 FLOPs per multiply-add; elementwise ops are not counted), the way papers report them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .clipguard import ClipGuardFusion, example_inputs


@dataclass(frozen=True)
class PartCost:
    name: str
    params: int
    flops: int


def part_costs(model: ClipGuardFusion) -> list[PartCost]:
    """One row per top-level part (text_tower, image_tower, fusion, heads, ...) and a last "total" row."""
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*example_inputs(model.cfg, batch=1))
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    rows = [PartCost(name, sum(p.numel() for p in child.parameters()), _flops(counts, f"{root}.{name}"))
            for name, child in model.named_children()]
    rows.append(PartCost("total", sum(p.numel() for p in model.parameters()), counts.get(root, 0)))
    return rows


def _flops(counts: dict[str, int], key: str) -> int:
    """A module's count; a ModuleList is never called itself, so its parts' counts are summed."""
    if key in counts:
        return counts[key]
    depth = key.count(".") + 1
    return sum(v for k, v in counts.items() if k.startswith(key + ".") and k.count(".") == depth)


def format_costs(rows: list[PartCost]) -> str:
    lines = [f"  {'part':<14}{'params M':>10}{'GFLOP':>10}"]
    lines += [f"  {r.name:<14}{r.params / 1e6:>10.2f}{r.flops / 1e9:>10.3f}" for r in rows]
    return "\n".join(lines)
