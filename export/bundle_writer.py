"""``edge-clipguard export``: checkpoint -> bundle directory (ONNX fp32 [+ INT8, fp16] [+ engines]).

The orchestrator: it calls the steps (``fp16``, ``int8``, ``engine_step``), which never import it back;
the types they share live in ``types``.

The bundle is assembled in a temporary sibling directory and renamed into place only when
every artifact is written and validated (and, with ``--sign-key``, signed), so a failed export never
leaves a partial bundle and a signed export never shows an unsigned one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .. import __version__
from ..atomic import atomic_directory
from ..bundle import ENGINE, FP16_ONNX, FP32_ONNX, ONNX, TARGET_ANY, TOKENIZER_NAME, Artifact, write_manifest
from ..contract import text_buckets
from ..signing import SIGNATURE_NAME, load_private_key, sign_bundle
from .engine_step import build_engines_for_bundle
from .fp16 import write_fp16
from .manifest_builder import build_manifest
from .types import ArtifactReport, ExportError, ExportRequest, ExportResult

MIN_OPSET, MAX_OPSET = 13, 20


def require_onnxruntime() -> None:
    """Export checks every graph it writes with ONNX Runtime; the [train] extra leaves the choice of ONNX Runtime
    build to [cpu] (onnxruntime) or [gpu] (onnxruntime-gpu), which install the same package and must not meet."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ExportError("export validates every graph with ONNX Runtime, which is not installed: "
                          "pip install 'edge-clipguard[cpu]' (or [gpu] on a CUDA machine)") from None


def check_output_dir(out: Path, force: bool) -> None:
    """Refuse an existing bundle unless --force, and an output folder we cannot write into."""
    if out.exists() and not force:
        raise ExportError(f"{out}: already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory")
    probe = out.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ExportError(f"{out}: cannot create it, {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: cannot write into {probe} (permission denied)")


def check_config_matches(cfg, expected: str, checkpoint: str) -> None:
    from ..config import load_config

    wanted = load_config(expected)
    if wanted != cfg:
        diff = sorted(k for k, v in wanted.to_dict().items() if cfg.to_dict().get(k) != v)
        raise ExportError(f"{checkpoint}: trained with config '{cfg.name}', which differs from --config "
                          f"{expected!r} in {diff}")


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def _versions(opset: int) -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"edge_clipguard": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "opset": str(opset)}


def write_fp32(model, bundle: Path, opset: int) -> tuple[Artifact, ArtifactReport]:
    """Export and validate the fp32 graph (ORT vs PyTorch at two batch sizes, tol 1e-4)."""
    from .onnx_export import export_onnx, validate_onnx

    started = time.perf_counter()
    path = export_onnx(model, bundle / FP32_ONNX, opset=opset)
    errors = validate_onnx(path, model, batch_sizes=(1, 3))
    seconds = time.perf_counter() - started
    worst = {e.name: {"max_abs": e.max_abs, "max_rel": e.max_rel} for e in errors}
    accuracy = "max |Δ| vs torch: " + ", ".join(f"{e.name} {e.max_abs:.1e}" for e in errors if e.name != "labels")
    artifact = Artifact(FP32_ONNX, ONNX, "fp32", TARGET_ANY, None, {"opset": opset, "validation": worst})
    return artifact, ArtifactReport(FP32_ONNX, "fp32", _size_mb(path), accuracy, seconds)


def export_bundle(req: ExportRequest, log=print) -> ExportResult:
    """Run the whole export; see the module docstring for the atomicity guarantee."""
    from ..train.checkpoint import load_checkpoint, restore_model

    out = Path(req.out)
    check_output_dir(out, req.force)
    if req.engine not in ("auto", "always", "never"):
        raise ExportError(f"--engine: expected auto, always or never, got {req.engine!r}")
    if not MIN_OPSET <= req.opset <= MAX_OPSET:
        raise ExportError(f"--opset: expected {MIN_OPSET}..{MAX_OPSET} (Q/DQ per channel needs 13), got {req.opset}")
    require_onnxruntime()
    signing_key = load_private_key(req.sign_key) if req.sign_key else None  # a bad key fails before the work
    payload = load_checkpoint(req.checkpoint)
    model, cfg = restore_model(payload)
    if req.config is not None:
        check_config_matches(cfg, req.config, req.checkpoint)
    quantized = bool(payload.get("modelopt_state"))
    if quantized and not req.int8:
        raise ExportError(f"{req.checkpoint}: is a QAT (fake-quant) checkpoint; export it with --int8")
    artifacts: list[Artifact] = []
    rows: list[ArtifactReport] = []
    notes: list[str] = []
    with atomic_directory(out) as bundle:
        (bundle / TOKENIZER_NAME).write_text(payload["tokenizer_json"], encoding="utf-8")
        if quantized:
            from ..train.quantize import strip_quantizers

            fp32_model = strip_quantizers(model)
        else:
            fp32_model = model
        art, row = write_fp32(fp32_model, bundle, req.opset)
        artifacts.append(art)
        rows.append(row)
        if req.fp16:
            art, row = write_fp16(fp32_model, bundle / FP32_ONNX, bundle / FP16_ONNX)
            artifacts.append(art)
            rows.append(row)
        if req.int8:
            from .int8 import write_int8

            int8_arts, int8_rows, int8_notes = write_int8(model, fp32_model, cfg, payload, bundle, req, log)
            artifacts.extend(int8_arts)
            rows.extend(int8_rows)
            notes.extend(int8_notes)
        from .split_graph import add_parts

        feature_dim = None
        if req.parts:
            artifacts, feature_dim, split_notes = add_parts(bundle, artifacts, cfg)
            notes.extend(split_notes)
        if req.engine != "never":
            eng_arts, eng_rows, eng_notes = build_engines_for_bundle(bundle, artifacts, req,
                                                                     text_buckets(cfg.text.max_length), log)
            artifacts.extend(eng_arts)
            rows.extend(eng_rows)
            notes.extend(eng_notes)
        manifest = build_manifest(cfg, bundle, artifacts, _versions(req.opset), __version__, feature_dim)
        write_manifest(bundle, manifest)
        if signing_key is not None:
            info = sign_bundle(bundle, signing_key, name=out.name)
            notes.append(f"signed: {out / SIGNATURE_NAME} ({info.describe()})")
    return ExportResult(out, manifest, rows, notes)


def format_summary(result: ExportResult) -> str:
    """The table export prints, followed by the next commands to run."""
    name_width = max([22, *(len(row.file) + 2 for row in result.rows)])
    header = f"{'artifact':<{name_width}}{'precision':<15}{'size MB':>9}  {'build s':>8}  accuracy vs PyTorch fp32"
    lines = [f"bundle: {result.bundle}", header, "-" * len(header)]
    for row in result.rows:
        lines.append(f"{row.file:<{name_width}}{row.precision:<15}{row.size_mb:>9.1f}  {row.build_seconds:>8.1f}  "
                     f"{row.accuracy}")
    lines.extend(result.notes)
    lines.append("next:")
    lines.append(f"  edge-clipguard predict {result.bundle} --text \"a red star\" --image IMAGE.jpg --draw out.png")
    lines.append(f"  edge-clipguard profile {result.bundle} --batch 1,8")
    if not any(a.kind == ENGINE for a in result.manifest.artifacts):
        lines.append(f"  on the target GPU: edge-clipguard build-engine {result.bundle}")
    return "\n".join(lines)

