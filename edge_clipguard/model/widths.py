"""Pruned widths: how a pruned model's layers differ from what its config builds, as plain JSON.

``edge-clipguard prune`` removes channels, FFN units and attention heads, so a pruned model no longer matches
``build_model(cfg)``. Rather than a second architecture description, the config carries ``widths``: for each
layer whose size changed, the new values of its size attributes (``out_channels``, ``in_features``,
``num_heads``, ...) and the new shape of each of its tensors. ``build_model`` builds the config's model and then
``apply_widths`` resizes those layers (zero tensors: the checkpoint's weights fill them), so every command that
restores a checkpoint (train --init-from, export, evaluate, info, explain) gets the pruned network unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import SIZE_ATTRIBUTES, check_widths
from ..errors import ConfigError


def _size_attributes(module: nn.Module) -> dict[str, Any]:
    values = {}
    for name in SIZE_ATTRIBUTES:
        value = getattr(module, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            values[name] = value
        elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            values[name] = list(value)
    return values


def record_widths(pruned: nn.Module, reference: nn.Module) -> dict[str, Any]:
    """``{"layers": {path: {attribute: value}}, "tensors": {name: shape}}``: what differs in ``pruned`` from
    ``reference`` (the unpruned model of the same config). Empty dicts when nothing was pruned."""
    ref_modules = dict(reference.named_modules())
    layers = {}
    for path, module in pruned.named_modules():
        before, after = _size_attributes(ref_modules[path]), _size_attributes(module)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        if changed:
            layers[path] = changed
    ref_state = reference.state_dict()
    tensors = {name: list(t.shape) for name, t in pruned.state_dict().items() if t.shape != ref_state[name].shape}
    return {"layers": layers, "tensors": tensors} if layers or tensors else {}


def apply_widths(model: nn.Module, widths: dict[str, Any], where: str = "config widths") -> nn.Module:
    """Resize ``model``'s layers (in place) to ``widths`` (from ``record_widths``); tensors become zeros of
    the recorded shapes, for a checkpoint to fill."""
    if not widths:
        return model
    check_widths(widths, where)
    modules = dict(model.named_modules())
    for path, attributes in widths["layers"].items():
        if path not in modules:
            raise ConfigError(f"{where}: layer {path!r} is not in this model")
        for name, value in attributes.items():
            setattr(modules[path], name, tuple(value) if isinstance(value, list) else value)
    for name, shape in widths["tensors"].items():
        owner_path, _, leaf = name.rpartition(".")
        owner = modules.get(owner_path)
        current = None if owner is None else getattr(owner, leaf, None)
        if not isinstance(current, torch.Tensor):
            raise ConfigError(f"{where}: tensor {name!r} is not in this model")
        resized = torch.zeros(shape, dtype=current.dtype, device=current.device)
        if isinstance(current, nn.Parameter):
            setattr(owner, leaf, nn.Parameter(resized, requires_grad=current.requires_grad))
        else:
            owner._buffers[leaf] = resized
    return model
