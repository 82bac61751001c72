"""Engines for a bundle: the optional last step of ``export`` and the ``build-engine`` command on the target.

Which ONNX files become engines (``select_sources``):
- only ONNX artifacts meant for TensorRT (target "any" or "tensorrt"); the CPU-tuned INT8 file
  (target "onnxruntime-cpu", U8S8) is never used: its Q/DQ layout is not the one TensorRT wants;
- by default the INT8 and FP16 ONNX when the bundle has them (the deployable precisions), else FP32:
  an FP32 engine next to an INT8 one is rarely what anyone ships, and each engine costs minutes to build;
- ``--precision`` picks explicitly; asking for fp16 in a bundle without an fp16 ONNX falls back to the
  FP32 ONNX + the FP16 builder flag on TensorRT 10 and is refused on TensorRT 11 (no precision flags).
Engines are machine-specific, so export usually cannot build them (no TensorRT or no GPU there): with
``--engine auto`` it then prints the command to run on the target instead of failing.
An ONNX artifact cut in two (schema 3 ``parts``) gets two more plans from its parts, ``model.<p>.text.plan`` and
``model.<p>.fusion.plan``, each with its own optimization profile over batch and text length, recorded as the
engine artifact's ``parts``: the runtime then encodes each text once on the GPU too (its feature cache between
the two engines). The whole-graph plan stays (Triton and ``trtexec`` users load one file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..bundle import (
    ENGINE,
    FP32_ONNX,
    INT8_ONNX,
    MANIFEST_NAME,
    ONNX,
    TARGET_ANY,
    TARGET_TENSORRT,
    Artifact,
    ArtifactParts,
    Manifest,
    TensorSpec,
    engine_file_name,
    engine_parts,
    read_manifest,
    sha256_file,
    verify_file,
    write_manifest,
)
from ..signing import is_signed, load_private_key, sign_bundle, signature_path, verify_bundle
from .tensorrt_build import (
    EngineBuildConfig,
    EngineBuildError,
    build_engine,
    tensorrt_available,
    text_profile,
    trtexec_command,
)
from .types import ArtifactReport, BatchProfile, ExportRequest

Log = Callable[[str], None]
TRT_TARGETS = (TARGET_ANY, TARGET_TENSORRT)
NOT_VALIDATED = "engine: not compared here (run 'profile'/'evaluate' with it)"


@dataclass(frozen=True)
class EngineSource:
    """One engine to build: its precision label, the ONNX artifact it comes from, and whether to use the FP16 flag."""

    precision: str
    onnx: Artifact
    fp16_flag: bool = False

    @property
    def engine_file(self) -> str:
        return engine_file_name(self.precision)

    @property
    def engine_parts(self) -> ArtifactParts | None:
        """The part plans' names when the source ONNX is cut in two, else None."""
        return None if self.onnx.parts is None else engine_parts(self.precision)


@dataclass(frozen=True)
class PlanJob:
    """One plan file to build: from which ONNX file, to which file, for which input specs (the profile's axes)."""

    onnx: Path
    plan: Path
    inputs: tuple[TensorSpec, ...]


def plan_jobs(source: EngineSource, onnx_path: Callable[[str], Path], plan_path: Callable[[str], Path],
              inputs: Sequence[TensorSpec], part_inputs: tuple[Sequence[TensorSpec], Sequence[TensorSpec]] | None
              ) -> list[PlanJob]:
    """The whole graph's plan, then (when the source is cut in two and ``part_inputs`` is given) the text part's
    and the fusion part's. ``onnx_path``/``plan_path`` map a bundle member name to where it is read/written."""
    jobs = [PlanJob(onnx_path(source.onnx.file), plan_path(source.engine_file), tuple(inputs))]
    plans = source.engine_parts
    if plans is not None and part_inputs is not None:
        for onnx_name, plan_name, specs in ((source.onnx.parts.text, plans.text, part_inputs[0]),
                                            (source.onnx.parts.fusion, plans.fusion, part_inputs[1])):
            jobs.append(PlanJob(onnx_path(onnx_name), plan_path(plan_name), tuple(specs)))
    return jobs


def select_sources(artifacts: Sequence[Artifact], precisions: Sequence[str] | None,
                   fp16_flag_available: bool) -> list[EngineSource]:
    """The engines to build for ``artifacts`` (see the module docstring for the rules)."""
    candidates: dict[str, Artifact] = {}
    for art in sorted(artifacts, key=lambda a: a.target == TARGET_TENSORRT):  # a "tensorrt" file wins over "any"
        if art.kind == ONNX and art.target in TRT_TARGETS:
            candidates[art.precision] = art
    if not precisions:
        chosen = [p for p in ("int8", "fp16") if p in candidates] or [p for p in ("fp32",) if p in candidates]
        if not chosen:
            raise EngineBuildError("the bundle has no ONNX file for TensorRT (expected model.fp32.onnx, "
                                   "model.fp16.onnx or model.int8.onnx)")
        return [EngineSource(p, candidates[p]) for p in chosen]
    sources = []
    for precision in precisions:
        if precision in candidates:
            sources.append(EngineSource(precision, candidates[precision]))
        elif precision == "fp16" and "fp32" in candidates and fp16_flag_available:
            sources.append(EngineSource("fp16", candidates["fp32"], fp16_flag=True))
        elif precision == "fp16":
            raise EngineBuildError("the bundle has no fp16 ONNX and this TensorRT has no FP16 builder flag "
                                   "(TensorRT 11 is strongly typed only); "
                                   "re-export with 'edge-clipguard export --fp16'")
        elif precision == "int8":
            raise EngineBuildError("the bundle has no INT8 Q/DQ ONNX for TensorRT; re-export with "
                                   "'edge-clipguard export --int8'")
        else:
            raise EngineBuildError(f"the bundle has no {precision} ONNX for TensorRT")
    return sources


def _build_config(batch: BatchProfile, workspace_gib: float, source: EngineSource,
                  timing_cache: str | Path | None, device_index: int,
                  text_lengths: Sequence[int]) -> EngineBuildConfig:
    if workspace_gib <= 0:
        raise EngineBuildError(f"--workspace: expected a positive number of GiB, got {workspace_gib}")
    return EngineBuildConfig(min_batch=batch.min, opt_batch=batch.opt, max_batch=batch.max,
                             workspace_bytes=int(workspace_gib * (1 << 30)),
                             timing_cache=Path(timing_cache) if timing_cache else None,
                             fp16_flag=source.fp16_flag, precision=source.precision, device_index=device_index,
                             text_length=_text_range(text_lengths))


def _text_range(text_lengths: Sequence[int]) -> tuple[int, int, int] | None:
    """The text axis's profile; None for a graph whose text axis is fixed (a single length)."""
    return text_profile(text_lengths) if len(text_lengths) > 1 else None


def _build_one(jobs: Sequence[PlanJob], source: EngineSource, config: EngineBuildConfig,
               log: Log) -> tuple[Artifact, ArtifactReport]:
    """Build ``jobs`` (whole graph first, then its parts if any) into one engine artifact."""
    started = time.perf_counter()
    infos = [build_engine(job.onnx, job.plan, job.inputs, config, log) for job in jobs]
    details = infos[0].details(source.onnx.file)
    if len(jobs) > 1:
        details["parts_build_seconds"] = round(sum(info.build_seconds for info in infos[1:]), 2)
    artifact = Artifact(source.engine_file, ENGINE, source.precision, "tensorrt",
                        source.onnx.quant_format, details, parts=source.engine_parts if len(jobs) > 1 else None)
    row = ArtifactReport(source.engine_file, source.precision, sum(job.plan.stat().st_size for job in jobs) / 1e6,
                         NOT_VALIDATED, time.perf_counter() - started)
    return artifact, row


# -- export step ------------------------------------------------------------------------------------------
def onnx_input_specs(onnx_path: str | Path) -> tuple[TensorSpec, ...]:
    """Input specs read from an ONNX graph (symbolic dims keep their name), for the trtexec hint during export."""
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path), load_external_data=False)
    specs = []
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tensor.shape.dim)
        dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        specs.append(TensorSpec(value.name, dtype, dims))
    return tuple(specs)


def build_on_target_hint(out: str | Path, onnx_file: str, inputs: Sequence[TensorSpec], batch: BatchProfile,
                         workspace_gib: float, text_lengths: Sequence[int] = ()) -> str:
    """The two ways to build the engine later on the target GPU, as one line."""
    out = Path(out)
    ours = (f"edge-clipguard build-engine {out} --batch {batch.min}:{batch.opt}:{batch.max} "
            f"--workspace {workspace_gib:g}")
    plan = out / engine_file_name("int8" if onnx_file == INT8_ONNX else "fp32")
    theirs = trtexec_command(out / onnx_file, plan, inputs, (batch.min, batch.opt, batch.max),
                             int(workspace_gib * (1 << 30)), text=_text_range(text_lengths))
    return f"on the target GPU run: {ours}   (or: {theirs})"


def build_engines_for_bundle(bundle_dir: str | Path, artifacts: list[Artifact], req: ExportRequest,
                             text_lengths: Sequence[int], log: Log = print
                             ) -> tuple[list[Artifact], list[ArtifactReport], list[str]]:
    """Export's engine step: (new artifacts, summary rows, notes). ``bundle_dir`` is the bundle being written;
    ``text_lengths`` the manifest's padding lengths (the text axis's profile)."""
    if req.engine == "never":
        return [], [], []
    bundle = Path(bundle_dir)
    available, reason = tensorrt_available()
    if not available:
        if req.engine == "always":
            raise EngineBuildError(f"--engine always: cannot build a TensorRT engine here: {reason}; use "
                                   "--engine auto to write the ONNX bundle and build the engine on the target")
        names = {a.file for a in artifacts}
        onnx_file = INT8_ONNX if INT8_ONNX in names else FP32_ONNX
        hint = build_on_target_hint(req.out, onnx_file, onnx_input_specs(bundle / onnx_file), req.batch,
                                    req.workspace_gib, text_lengths)
        return [], [], [f"TensorRT engine not built ({reason}); {hint}"]
    try:
        sources = select_sources(artifacts, None, fp16_flag_available=False)
        new_artifacts, rows = [], []
        for source in sources:
            config = _build_config(req.batch, req.workspace_gib, source, None, 0, text_lengths)
            parts = source.onnx.parts
            part_specs = None if parts is None else (onnx_input_specs(bundle / parts.text),
                                                     onnx_input_specs(bundle / parts.fusion))
            jobs = plan_jobs(source, bundle.joinpath, bundle.joinpath, onnx_input_specs(bundle / source.onnx.file),
                             part_specs)
            art, row = _build_one(jobs, source, config, log)
            new_artifacts.append(art)
            rows.append(row)
    except EngineBuildError as exc:
        if req.engine == "always":
            raise
        return [], [], [f"TensorRT engine build failed ({exc}); the ONNX bundle is complete: retry on the target "
                        f"with 'edge-clipguard build-engine {req.out}'"]
    return new_artifacts, rows, [f"engines built with {reason}"]


# -- build-engine command ---------------------------------------------------------------------------------
@dataclass
class BuildEngineResult:
    bundle: Path
    manifest: Manifest
    rows: list[ArtifactReport]
    notes: list[str] = field(default_factory=list)


def signing_key_for(bundle: Path, sign_key: str | Path | None) -> Any | None:
    """build-engine --sign-key: the private key, after a signed bundle's signature verified with its public key,
    so re-signing never vouches for files changed since the last signature (SignatureError before any build)."""
    if sign_key is None:
        return None
    key = load_private_key(sign_key)
    if is_signed(bundle):
        verify_bundle(bundle, key.public_key())
    return key


def signature_after_rewrite(bundle: Path, key: Any | None, was_signed: bool) -> str | None:
    """After manifest.json changed: re-sign with ``key``, or say that the old signature is stale (verify refuses
    it: the manifest changed and the new plan files are extra)."""
    if key is not None:
        return f"signed: {sign_bundle(bundle, key).signature} (again, with the engines)"
    if was_signed:
        return (f"warning: {signature_path(bundle)} is now stale (manifest.json changed, the new plan files are not "
                f"covered) and verify refuses the bundle until you run: edge-clipguard sign {bundle} --key PRIV")
    return None


def _fp16_flag_available() -> bool:
    import tensorrt as trt

    return getattr(trt.BuilderFlag, "FP16", None) is not None


def updated_manifest(manifest: Manifest, new_artifacts: Sequence[Artifact], new_files: dict[str, str],
                     tensorrt_version: str) -> Manifest:
    """``manifest`` plus the new engines (an engine of the same file name is replaced; everything else kept)."""
    replaced = {a.file for a in new_artifacts}
    artifacts = tuple(a for a in manifest.artifacts if a.file not in replaced) + tuple(new_artifacts)
    files = {**manifest.files, **new_files}
    versions = {**manifest.versions, "tensorrt": tensorrt_version}
    return replace(manifest, artifacts=artifacts, files=files, versions=versions)


def build_engine_command(bundle_dir: str | Path, batch: BatchProfile, workspace_gib: float,
                         precisions: Sequence[str] | None, log: Log = print, timing_cache: str | Path | None = None,
                         device_index: int = 0, sign_key: str | Path | None = None) -> BuildEngineResult:
    """Build engines for an existing bundle on this GPU and record them in its manifest.json (atomically).

    A signed bundle is re-signed with ``sign_key`` (checked against the old signature first); without it, the
    result's notes say the signature is stale.

    The source ONNX files are checked against their manifest sha256 first, so an engine never silently comes
    from a modified file. Plans are built under temporary names and renamed into place together, just before
    the manifest is rewritten.
    """
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    was_signed, signing_key = is_signed(bundle), signing_key_for(bundle, sign_key)
    available, reason = tensorrt_available(device_index)
    if not available:
        raise EngineBuildError(f"cannot build TensorRT engines on this machine: {reason}")
    sources = select_sources(manifest.artifacts, precisions, _fp16_flag_available())
    onnx_paths = {name: verify_file(bundle, manifest, name) for s in sources for name in s.onnx.member_files()}
    part_specs = manifest.part_inputs() if manifest.text_features is not None else None
    staged: list[tuple[Path, Path]] = []
    new_artifacts, rows = [], []

    def staging(name: str) -> Path:  # plans are built under temporary names, renamed into place together
        staged.append((bundle / f".{name}.building", bundle / name))
        return staged[-1][0]

    try:
        for source in sources:
            config = _build_config(batch, workspace_gib, source, timing_cache, device_index,
                                   manifest.preprocess.text_lengths)
            jobs = plan_jobs(source, onnx_paths.__getitem__, staging, manifest.inputs, part_specs)
            art, row = _build_one(jobs, source, config, log)
            new_artifacts.append(art)
            rows.append(row)
        new_files = {}
        for temp, final in staged:
            new_files[final.name] = sha256_file(temp)
        for temp, final in staged:
            os.replace(temp, final)
        staged = []
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
    version = new_artifacts[0].details["tensorrt_version"]
    new_manifest = updated_manifest(manifest, new_artifacts, new_files, version)
    write_manifest(bundle, new_manifest)
    note = signature_after_rewrite(bundle, signing_key, was_signed)
    return BuildEngineResult(bundle, new_manifest, rows, [note] if note else [])


def format_build_summary(result: BuildEngineResult) -> str:
    lines = [f"bundle: {result.bundle}"]
    for row in result.rows:
        art = next(a for a in result.manifest.artifacts if a.file == row.file)
        d = art.details
        lines.append(f"  {row.file:<20}{row.precision:<6}{row.size_mb:>8.1f} MB  {row.build_seconds:>7.1f} s  "
                     f"TensorRT {d['tensorrt_version']}  {d['gpu_name']} (sm {d['compute_capability']})  "
                     f"batch {d['batch']['min']}:{d['batch']['opt']}:{d['batch']['max']}  from {d['source_onnx']}")
    lines.append(f"manifest updated: {result.bundle / MANIFEST_NAME}")
    lines.extend(result.notes)
    return "\n".join(lines)
