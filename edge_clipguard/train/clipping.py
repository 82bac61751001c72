"""Gradient clipping, the product's namesake: four modes, each measured on every step.

- ``none``: never clip (the norms are still measured and logged).
- ``norm``: clip the global L2 norm of all gradients to ``max_norm`` (``clip_grad_norm_``).
- ``adaptive``: the threshold is a running percentile of recent pre-clip global norms, so it
  follows the scale of the gradients instead of a hand-picked constant (``max_norm`` is used
  until ``min_history`` norms have been seen); a spike enters the history capped at
  ``SPIKE_CAP`` x the threshold, so it cannot switch clipping off for the whole window.
- ``per-modality``: the text tower, the image tower and fusion+heads are clipped to
  ``max_norm`` separately, so one tower's large gradients cannot shrink the other's updates.

Non-finite norms are reported (``finite = False``) and the caller skips that step.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import torch

SPIKE_CAP = 2.0

CLIP_MODES = ("none", "norm", "adaptive", "per-modality")
MODALITY_GROUPS = ("text", "image", "fusion")


@dataclass(frozen=True)
class ClipConfig:
    mode: str = "norm"
    max_norm: float = 1.0
    percentile: float = 90.0
    window: int = 200
    min_history: int = 20

    def __post_init__(self):
        if self.mode not in CLIP_MODES:
            raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {self.mode!r}")


@dataclass(frozen=True)
class ClipReport:
    """What clipping saw and did on one step. Norms are L2 over gradients."""

    pre_norms: dict[str, float]  # per modality group and "total", before clipping
    post_norm: float  # global norm after clipping
    threshold: float | None  # the global threshold used (None for none / per-modality)
    clipped: bool
    finite: bool


def modality_groups(model: torch.nn.Module) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters by modality: text tower, image tower, everything else (projections, fusion, heads)."""
    module = getattr(model, "module", model)  # unwrap DDP
    groups: dict[str, list[torch.nn.Parameter]] = {name: [] for name in MODALITY_GROUPS}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        root = name.split(".")[0]
        groups["text" if root == "text_tower" else "image" if root == "image_tower" else "fusion"].append(param)
    return groups


def grad_norm(params: list[torch.nn.Parameter]) -> float:
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def _scale(params: list[torch.nn.Parameter], factor: float) -> None:
    for p in params:
        if p.grad is not None:
            p.grad.detach().mul_(factor)


def _combine(norms: list[float]) -> float:
    return math.sqrt(sum(n * n for n in norms))


class GradientClipper:
    """Call after backward (and after AMP unscale): measures, clips in place, returns a ClipReport."""

    def __init__(self, cfg: ClipConfig, groups: dict[str, list[torch.nn.Parameter]]):
        self.cfg = cfg
        self.groups = groups
        self.history: collections.deque[float] = collections.deque(maxlen=cfg.window)

    def _spike_cap(self, limit: float) -> float:
        """Largest norm the history may record: SPIKE_CAP x the current threshold (x the median
        during warm-up). Without it one early spike (e.g. 287 among norms of ~5) sits in the
        window for ``window`` steps, lifts the percentile above every later norm, and adaptive
        clipping silently stops clipping (seen in benchmarks/bench_clip_modes.py)."""
        if not self.history:
            return math.inf
        if len(self.history) >= self.cfg.min_history:
            return SPIKE_CAP * limit
        return SPIKE_CAP * float(torch.quantile(torch.tensor(list(self.history)), 0.5))

    def threshold(self) -> float:
        if self.cfg.mode == "adaptive" and len(self.history) >= self.cfg.min_history:
            return float(torch.quantile(torch.tensor(list(self.history)), self.cfg.percentile / 100.0))
        return self.cfg.max_norm

    def __call__(self) -> ClipReport:
        pre = {name: grad_norm(params) for name, params in self.groups.items()}
        total = _combine(list(pre.values()))
        pre["total"] = total
        if not math.isfinite(total):
            return ClipReport(pre, total, None, False, False)
        mode = self.cfg.mode
        if mode == "per-modality":
            post_parts, clipped = [], False
            for name, params in self.groups.items():
                factor = min(1.0, self.cfg.max_norm / (pre[name] + 1e-6))
                if factor < 1.0:
                    _scale(params, factor)
                    clipped = True
                post_parts.append(pre[name] * factor)
            return ClipReport(pre, _combine(post_parts), None, clipped, True)
        if mode == "none":
            return ClipReport(pre, total, None, False, True)
        limit = self.threshold()
        if mode == "adaptive":
            self.history.append(min(total, self._spike_cap(limit)))
        factor = min(1.0, limit / (total + 1e-6))
        if factor < 1.0:
            for params in self.groups.values():
                _scale(params, factor)
        return ClipReport(pre, total * factor, limit, factor < 1.0, True)

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history.clear()
        self.history.extend(state.get("history", []))
