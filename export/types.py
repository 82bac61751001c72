"""Types the export steps share with their orchestrator (``bundle_writer``), kept apart so imports run one way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import Manifest
from ..errors import ClipGuardError


class ExportError(ClipGuardError):
    """The export request cannot be carried out (bad paths, existing bundle, ...)."""


@dataclass(frozen=True)
class BatchProfile:
    """TensorRT optimization profile for the batch axis (min <= opt <= max)."""

    min: int = 1
    opt: int = 1
    max: int = 8

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        parts = text.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ExportError(f"--batch: expected MIN:OPT:MAX integers, got {text!r}") from None
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise ExportError(f"--batch: expected MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX, got {text!r}")
        return cls(*values)


@dataclass(frozen=True)
class ExportRequest:
    checkpoint: str
    out: str
    int8: bool = False
    cpu_int8: bool = False  # also the ORT-CPU-tuned U8S8 twin (model.int8-cpu.onnx), for ORT-only CPU devices
    fp16: bool = False
    calib: str | None = None  # folder or manifest; default: the committed calibration_data/
    calib_samples: int = 0  # 0: use every calibration sample
    val_data: str | None = None  # manifest used for the accuracy column; default: the calibration set's val split
    batch: BatchProfile = field(default_factory=BatchProfile)
    engine: str = "auto"  # auto | always | never
    workspace_gib: float = 2.0
    opset: int = 17
    force: bool = False
    config: str | None = None  # when given, the checkpoint's model config must equal this one
    sign_key: str | None = None  # private key PEM: sign the bundle (BUNDLE/bundle.sig) before it appears
    parts: bool = True  # also cut each ONNX artifact at the text features (schema 3); False: whole graphs only


@dataclass
class ArtifactReport:
    """One row of the export summary table."""

    file: str
    precision: str
    size_mb: float
    accuracy: str
    build_seconds: float


@dataclass
class ExportResult:
    bundle: Path
    manifest: Manifest
    rows: list[ArtifactReport]
    notes: list[str]
