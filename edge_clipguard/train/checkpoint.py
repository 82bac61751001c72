"""Checkpoints: everything needed to resume a run or export its model, written atomically.

A checkpoint holds the model weights, the model config, the tokenizer (as tokenizer.json text),
optimizer / scheduler / AMP-scaler / clipper state, step and epoch, the RNG states (so a resumed
run continues the same curve) and, for quantization-aware runs, the ModelOpt quantizer state.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path
from ..config import ModelConfig, config_from_dict
from ..contract import LEGACY_RESIZE
from ..errors import ClipGuardError

FORMAT = "edge-clipguard-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ClipGuardError):
    """Missing, corrupt or foreign checkpoint file."""


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, model_cfg: ModelConfig, tokenizer_json: str,
                    step: int, epoch: int, train_state: dict[str, Any] | None = None,
                    modelopt_state: dict | None = None, metrics: dict | None = None) -> Path:
    """Write the checkpoint to a temp file beside ``path``, fsync it and rename it into place."""
    module = getattr(model, "module", model)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model_cfg.to_dict(),
        "model": module.state_dict(),
        "tokenizer_json": tokenizer_json,
        "step": step,
        "epoch": epoch,
        "train_state": train_state or {},
        "modelopt_state": modelopt_state,
        "metrics": metrics or {},
        "rng": rng_state(),
    }
    with atomic_path(path, durable=True) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; raise CheckpointError with a one-line reason if it is not one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        # weights_only: torch's restricted unpickler builds tensors, containers and plain scalars only, so a
        # shared teacher, QAT or resume checkpoint cannot run code while it loads. Everything we save (weights,
        # optimizer/scheduler/scaler state, ModelOpt's quantizer layout, RNG state) is of those types.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the restricted unpickler's refusals, and pickles too broken to read
        foreign = _foreign_global(exc)
        if foreign:
            raise CheckpointError(f"{path}: refused: its pickle asks for {foreign}, which is not tensor data; a "
                                  "checkpoint holds only tensors and plain data, and loading never runs code") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (UnpicklingError)") from None
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an edge-clipguard checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {payload.get('format_version')} is not {FORMAT_VERSION}")
    return payload


def _foreign_global(exc: pickle.UnpicklingError) -> str | None:
    """The one fact in torch's multi-paragraph weights-only error, if it is a refusal: the global (a class or
    function, e.g. ``posix.system``) the pickle asked to import."""
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(exc))
    return found.group(1) if found else None


def checkpoint_config(payload: dict[str, Any]) -> ModelConfig:
    """The checkpoint's ModelConfig. One saved before configs had ``resize`` was trained on Pillow's
    resize (``LEGACY_RESIZE``), so that is what its model gets fed, not today's default."""
    data = {"resize": LEGACY_RESIZE, **payload["model_config"]}
    return config_from_dict(data, "checkpoint model_config")


def restore_model(payload: dict[str, Any]) -> tuple[torch.nn.Module, ModelConfig]:
    """Build the model of a loaded checkpoint (with its quantizers, if any) and load its weights."""
    from ..model import build_model

    cfg = checkpoint_config(payload)
    model = build_model(cfg, pretrained=False)
    if payload.get("modelopt_state"):
        from .quantize import restore_quantizers

        model = restore_quantizers(model, payload["modelopt_state"])
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint weights do not fit its model_config '{cfg.name}': {first}") from None
    return model.eval(), cfg


def load_tokenizer_from_checkpoint(payload: dict[str, Any]):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(payload["tokenizer_json"])


def checkpoint_summary(payload: dict[str, Any]) -> str:
    return json.dumps({"step": payload["step"], "epoch": payload["epoch"], "metrics": payload.get("metrics", {})})
