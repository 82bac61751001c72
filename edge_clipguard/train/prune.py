"""``edge-clipguard prune``: structured pruning of a trained checkpoint to a FLOPs target (torch-pruning).

What is removed: output channels of the image tower's convolutions (EfficientNet's expansions and stage
outputs), the box head's FPN and trunk channels, the score head's hidden units, and, in the text tower and the
fusion, whole attention heads and FFN units. What is kept: every tensor that feeds a residual stream (BERT's
hidden size, the fusion width D: the embedding table, the position codes and the LayerNorms share them) and
every output layer (heat map, size, offset, score, refer logits), so the model's contract does not change.

How: torch-pruning's dependency graph finds which tensors must lose the same channels (a depthwise conv and
its producer, an FPN sum, q/k/v/out of one attention); each group loses the same fraction of its channels,
``ratio``, ranked by its ``--importance`` (weight L2 magnitude, or first-order Taylor |w * dL/dw| from a few
calibration batches), rounded so widths stay multiples of ``--round-to`` and never fall below ``--keep-min``.
The ratio is found by bisection so the pruned model's FLOPs (``model.complexity``: batch 1, matmuls and
convolutions) land at or just under ``--flops`` of the source's. The result is an ordinary checkpoint whose
config records the new widths (``model.widths``): fine-tune it with ``train --init-from`` (and ``--teacher``),
then ``train --qat`` and ``export``. QAT checkpoints are refused: prune the fp32 model, fine-tune, then QAT.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..atomic import write_text_atomic
from ..errors import ClipGuardError
from ..model.complexity import PartCost, part_costs

IMPORTANCE_CHOICES = ("magnitude", "taylor")
OUTPUT_NAME = "pruned.pt"
REPORT_NAME = "prune.json"
MAX_RATIO = 0.95  # the most of any group's channels the search will try to remove
SEARCH_STEPS = 8  # bisection steps: the ratio is found to within MAX_RATIO / 2**8 (0.4 %)
INSTALL_HINT = "pip install 'edge-clipguard[train]' (torch-pruning)"


class PruneError(ClipGuardError):
    """A prune request that cannot be met: bad arguments, a QAT checkpoint, an unreachable target."""


@dataclass(frozen=True)
class PruneRequest:
    checkpoint: str
    out: str
    flops: float = 0.5  # target FLOPs as a fraction of the source model's
    importance: str = "magnitude"
    round_to: int = 8
    keep_min: int = 16
    exclude: tuple[str, ...] = ()  # top-level parts left whole (see ``model_parts``)
    calib: str | None = None  # taylor: manifest or folder (default: the committed calibration_data/)
    calib_batches: int = 4
    batch_size: int = 8
    force: bool = False


@dataclass
class PruneResult:
    checkpoint: Path
    ratio: float
    before: list[PartCost]
    after: list[PartCost]
    widths: dict = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"  {'part':<14}{'params M':>10}{'-> M':>8}{'GFLOP':>9}{'-> GFLOP':>10}{'kept':>7}"]
        for b, a in zip(self.before, self.after):
            kept = a.flops / b.flops if b.flops else 1.0
            lines.append(f"  {b.name:<14}{b.params / 1e6:>10.2f}{a.params / 1e6:>8.2f}{b.flops / 1e9:>9.3f}"
                         f"{a.flops / 1e9:>10.3f}{kept:>7.0%}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"checkpoint": str(self.checkpoint), "ratio": self.ratio,
                "parts": [{"name": b.name, "params_before": b.params, "params_after": a.params,
                           "flops_before": b.flops, "flops_after": a.flops} for b, a in zip(self.before, self.after)]}


def model_parts(model: nn.Module) -> list[str]:
    """The names ``--exclude`` takes: the model's top-level parts (those ``info`` lists)."""
    return [name for name, _ in model.named_children()]


def check_request(req: PruneRequest) -> None:
    if not 0.0 < req.flops < 1.0:
        raise PruneError(f"--flops must be a fraction of the model's FLOPs in (0, 1), got {req.flops}")
    if req.importance not in IMPORTANCE_CHOICES:
        raise PruneError(f"--importance must be one of {list(IMPORTANCE_CHOICES)}, got {req.importance!r}")
    if req.round_to < 1:
        raise PruneError(f"--round-to must be >= 1, got {req.round_to}")
    if req.keep_min < 1:
        raise PruneError(f"--keep-min must be >= 1 (a layer with no channels is no layer), got {req.keep_min}")
    out = Path(req.out) / OUTPUT_NAME
    if out.exists() and not req.force:
        raise PruneError(f"{out} exists; pass --force to replace it")


def protected_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose outputs keep their width: the outputs of the model and every writer of a residual stream
    (the fusion's D, BERT's hidden size), whose channels the embedding table, position codes, level embedding
    and LayerNorms share; torch-pruning then cuts only inside blocks."""
    layers: list[nn.Module] = [model.box_head.heatmap, model.box_head.log_size, model.box_head.offset,
                               model.score_head.mlp[-1], model.refer_head.linear, model.text_proj, *model.image_proj]
    for layer in model.fusion.layers:
        layers += [layer.image_from_text.out_proj, layer.text_from_image.out_proj,
                   layer.image_ffn.net[-1], layer.text_ffn.net[-1]]
    bert = model.text_tower.bert
    layers.append(bert.embeddings)
    for block in bert.encoder.layer:
        layers += [block.attention.output.dense, block.output.dense]
    return layers


def attention_heads(model: nn.Module) -> dict[nn.Module, int]:
    """q/k/v projections -> their head count, so torch-pruning removes whole heads (head size unchanged)."""
    heads: dict[nn.Module, int] = {}
    for layer in model.fusion.layers:
        for attention in (layer.image_from_text, layer.text_from_image):
            for proj in (attention.q_proj, attention.k_proj, attention.v_proj):
                heads[proj] = attention.num_heads
    for block in model.text_tower.bert.encoder.layer:
        self_attention = block.attention.self
        for proj in (self_attention.query, self_attention.key, self_attention.value):
            heads[proj] = self_attention.num_attention_heads
    return heads


def sync_head_counts(model: nn.Module) -> None:
    """After heads were removed, the attention modules' head counts follow their projections' widths."""
    for layer in model.fusion.layers:
        for attention in (layer.image_from_text, layer.text_from_image):
            attention.num_heads = attention.q_proj.out_features // attention.head_dim
    for block in model.text_tower.bert.encoder.layer:
        self_attention = block.attention.self
        self_attention.all_head_size = self_attention.query.out_features
        self_attention.num_attention_heads = self_attention.all_head_size // self_attention.attention_head_size


def capped_ratios(model: nn.Module, ratio: float, keep_min: int, skip: set[nn.Module]) -> dict[nn.Module, float]:
    """Per-layer ratios: ``ratio``, lowered where it would leave fewer than ``keep_min`` output channels."""
    caps = {}
    for module in model.modules():
        width = getattr(module, "out_channels", None) or getattr(module, "out_features", None)
        if module in skip or not isinstance(module, (nn.Conv2d, nn.Linear)) or not width:
            continue
        caps[module] = max(0.0, min(ratio, 1.0 - keep_min / width))
    return caps


def prune_copy(model: nn.Module, ratio: float, req: PruneRequest, inputs: tuple) -> nn.Module:
    """A pruned deep copy of ``model`` (with its gradients, for Taylor importance) at channel ratio ``ratio``."""
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    for source, copied in zip(model.parameters(), pruned.parameters()):  # deepcopy leaves gradients behind
        copied.grad = None if source.grad is None else source.grad.clone()
    excluded = [pruned.get_submodule(name) for name in req.exclude]
    ignored = protected_layers(pruned) + excluded
    skip = {m for layer in ignored for m in layer.modules()}
    heads = {proj: n for proj, n in attention_heads(pruned).items() if proj not in skip}
    importance = (tp.importance.GroupTaylorImportance() if req.importance == "taylor"
                  else tp.importance.GroupMagnitudeImportance(p=2))
    pruner = tp.pruner.BasePruner(
        pruned, inputs, importance=importance, pruning_ratio=ratio,
        pruning_ratio_dict=capped_ratios(pruned, ratio, req.keep_min, skip), ignored_layers=ignored,
        round_to=req.round_to, num_heads=heads, prune_num_heads=True, prune_head_dims=False,
        head_pruning_ratio=ratio, unwrapped_parameters=[(pruned.level_embed, 1)])
    pruner.step()
    sync_head_counts(pruned)
    return pruned


def total_flops(model: nn.Module) -> int:
    return part_costs(model)[-1].flops


def search_ratio(model: nn.Module, target_flops: float, req: PruneRequest, inputs: tuple,
                 log: Callable[[str], None]) -> tuple[float, nn.Module]:
    """Bisection on the shared channel ratio: the smallest ratio found whose model is at or under the target."""
    best = prune_copy(model, MAX_RATIO, req, inputs)
    floor = total_flops(best)
    if floor > target_flops:
        raise PruneError(f"--flops {req.flops}: unreachable; removing up to {MAX_RATIO:.0%} of each layer's channels "
                         f"(never below --keep-min {req.keep_min}, excluded parts whole) leaves "
                         f"{floor / total_flops(model):.0%} of the FLOPs")
    low, high = 0.0, MAX_RATIO
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        candidate = prune_copy(model, middle, req, inputs)
        flops = total_flops(candidate)
        log(f"prune: ratio {middle:.3f} -> {flops / 1e9:.3f} GFLOP (target {target_flops / 1e9:.3f})")
        if flops <= target_flops:
            high, best = middle, candidate
        else:
            low = middle
    return high, best


def taylor_gradients(model: nn.Module, tokenizer, cfg, req: PruneRequest) -> None:
    """Accumulate dL/dw of the training loss over ``calib_batches`` calibration batches (eval mode: BatchNorm
    statistics stay as trained). Frozen parameters get gradients too, so every layer can be ranked."""
    from ..data.calibration import load_calibration_samples
    from ..data.dataset import ManifestDataset, collate
    from .loop import batch_losses

    rows = load_calibration_samples(req.calib, cfg.num_classes)
    dataset = ManifestDataset(rows, tokenizer, cfg.image_size, cfg.resize)
    loader = torch.utils.data.DataLoader(dataset, batch_size=req.batch_size, shuffle=False, collate_fn=collate)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(True)
        param.grad = None
    for i, batch in enumerate(loader):
        if i >= req.calib_batches:
            break
        sum(batch_losses(model, batch).values()).backward()


def prune_checkpoint(req: PruneRequest, log: Callable[[str], None] = print) -> PruneResult:
    """Prune ``req.checkpoint`` to ``req.flops`` of its FLOPs and write ``OUT/pruned.pt`` and ``OUT/prune.json``."""
    try:
        import torch_pruning  # noqa: F401
    except ImportError:
        raise PruneError(f"prune needs torch-pruning: {INSTALL_HINT}") from None
    from ..model import build_model
    from ..model.clipguard import example_inputs
    from ..model.widths import record_widths
    from .checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model, save_checkpoint

    check_request(req)
    payload = load_checkpoint(req.checkpoint)
    if payload.get("modelopt_state"):
        raise PruneError(f"{req.checkpoint}: a QAT (quantized) checkpoint; prune before QAT: prune the fp32 "
                         "checkpoint, fine-tune it (train --init-from), then train --qat")
    model, cfg = restore_model(payload)
    unknown = sorted(set(req.exclude) - set(model_parts(model)))
    if unknown:
        raise PruneError(f"--exclude {', '.join(unknown)}: no such part; parts are {model_parts(model)}")
    tokenizer = load_tokenizer_from_checkpoint(payload)
    if req.importance == "taylor":
        taylor_gradients(model, tokenizer, cfg, req)
    before = part_costs(model)
    ratio, pruned = search_ratio(model, req.flops * before[-1].flops, req, example_inputs(cfg, batch=1), log)
    pruned.zero_grad(set_to_none=True)
    widths = record_widths(pruned, build_model(dataclasses.replace(cfg, widths={}), pretrained=False))
    pruned_cfg = dataclasses.replace(cfg, widths=widths)
    pruned.cfg = pruned_cfg
    out = Path(req.out)
    out.mkdir(parents=True, exist_ok=True)
    after = part_costs(pruned)
    result = PruneResult(out / OUTPUT_NAME, ratio, before, after, widths)
    source = {"checkpoint": str(req.checkpoint), "step": payload.get("step"), "flops_target": req.flops,
              "importance": req.importance, "round_to": req.round_to, "keep_min": req.keep_min,
              "exclude": list(req.exclude), "ratio": ratio}
    save_checkpoint(result.checkpoint, model=pruned, model_cfg=pruned_cfg, tokenizer_json=payload["tokenizer_json"],
                    step=0, epoch=0, metrics={"pruned_from": source})
    write_text_atomic(out / REPORT_NAME, json.dumps({**result.to_dict(), "source": source}, indent=2) + "\n")
    return result
