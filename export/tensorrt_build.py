"""ONNX -> TensorRT plan file with the TensorRT Python API (10.x and 11.x), plus the trtexec equivalent.

Why it is built this way:
- Strongly typed networks: precision comes from the ONNX itself (INT8 from Q/DQ nodes, FP16 from an
  fp16-typed graph). TensorRT 11 only has strongly typed networks and dropped the precision builder
  flags; TensorRT 10 still offers the FP16 flag, used only as an explicit fallback (``fp16_flag``) on a
  weakly typed network when a bundle has no fp16 ONNX.
- One optimization profile over the batch and text-length axes; every other dimension is fixed by the
  manifest, so the engine has no data-dependent shapes, and the runtime pads text to a few lengths, so CUDA
  graphs are captured for a few shapes only.
- The timing cache file is reused across builds (one per TensorRT version and GPU architecture) and
  written back atomically, so rebuilding the int8 and fp16 engines, or rebuilding later, is faster.
- The plan is written as-is (no custom header): trtexec ``--loadEngine`` and Triton read it directly;
  what we know about it goes into the bundle manifest instead.
TensorRT and cuda-python are imported lazily: importing this module costs nothing on a machine without them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..bundle import TensorSpec
from ..contract import BATCH_AXIS, TEXT_AXIS
from ..cuda_runtime import cuda_call, gpu_info, import_cudart
from ..errors import ClipGuardError, CudaError
from ..paths import cache_dir

Log = Callable[[str], None]


class EngineBuildError(ClipGuardError):
    """A TensorRT engine cannot be built (TensorRT missing, parser errors, builder failure, bad profile)."""


@dataclass(frozen=True)
class EngineBuildConfig:
    """How to build one engine.

    min/opt/max_batch: the optimization profile of the batch axis (opt is what the builder tunes for).
    workspace_bytes: the builder's workspace memory-pool limit.
    timing_cache: file to load before and save after the build; None picks one under the cache dir keyed by
      TensorRT version and compute capability (a cache is only valid for the same pair).
    fp16_flag: TensorRT 10 only: build a weakly typed network with BuilderFlag.FP16 (for a bundle without an
      fp16-typed ONNX). Refused on TensorRT 11, where the flag no longer exists.
    precision: the label recorded for the engine ("int8", "fp16", "fp32").
    """

    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8
    workspace_bytes: int = 2 << 30
    timing_cache: Path | None = None
    fp16_flag: bool = False
    precision: str = "fp32"
    device_index: int = 0
    text_length: tuple[int, int, int] | None = None  # min/opt/max of the text axis (None: a fixed-length graph)

    def __post_init__(self) -> None:
        if self.text_length is not None and not 1 <= self.text_length[0] <= self.text_length[1] <= self.text_length[2]:
            raise EngineBuildError(f"text length profile must satisfy 1 <= min <= opt <= max, got {self.text_length}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise EngineBuildError(f"batch profile must satisfy 1 <= min <= opt <= max, got "
                                   f"{self.min_batch}:{self.opt_batch}:{self.max_batch}")
        if self.workspace_bytes <= 0:
            raise EngineBuildError(f"workspace must be positive, got {self.workspace_bytes} bytes")


@dataclass(frozen=True)
class EngineInfo:
    """What the manifest records about a built engine (runtime checks the first three before loading)."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    build_seconds: float
    profile: dict[str, int]
    strongly_typed: bool
    workspace_bytes: int
    timing_cache: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def details(self, source_onnx: str) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out.pop("timing_cache")  # a path on the build machine: meaningless inside a shipped bundle
        out["batch"] = out.pop("profile")
        out["build_seconds"] = round(self.build_seconds, 2)
        out["source_onnx"] = source_onnx
        out.update(self.extra)
        return out


# -- availability -----------------------------------------------------------------------------------------
def tensorrt_available(device_index: int = 0) -> tuple[bool, str]:
    """(True, "TensorRT X on GPU (cc)") when tensorrt imports and a CUDA GPU is visible, else (False, why).

    The reason lists every missing piece (TensorRT, cuda-python, GPU) so the user fixes them in one go.
    """
    problems: list[str] = []
    trt = None
    try:
        import tensorrt as trt
    except ImportError as exc:
        problems.append(f"TensorRT is not installed ({exc})")
    except Exception as exc:  # a broken install (e.g. the PyPI download stub, missing libnvinfer)
        problems.append(f"TensorRT does not import ({type(exc).__name__}: {exc})")
    gpu = ""
    try:
        cudart = import_cudart()
        count = cuda_call(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count:
            problems.append("no CUDA GPU is visible")
        elif device_index >= count:
            problems.append(f"CUDA device {device_index} does not exist ({count} visible)")
        else:
            name, cc = gpu_info(cudart, device_index)
            gpu = f"{name} (compute capability {cc})"
    except CudaError as exc:
        problems.append(f"no CUDA GPU is visible ({exc})")
    if problems:
        return False, "; ".join(problems)
    return True, f"TensorRT {trt.__version__} on {gpu}"


# -- pure helpers -----------------------------------------------------------------------------------------
def text_profile(text_lengths: Sequence[int]) -> tuple[int, int, int]:
    """(min, opt, max) of the text axis for the manifest's padding lengths: the runtime pads every batch to one
    of them, so the range is smallest..largest, and the builder tunes for the second smallest (short queries
    are the common case; 16 for base's 8/16/32/64)."""
    lengths = sorted(text_lengths)
    return lengths[0], lengths[min(1, len(lengths) - 1)], lengths[-1]


def profile_shapes(inputs: Sequence[TensorSpec], min_batch: int, opt_batch: int, max_batch: int,
                   text: tuple[int, int, int] | None = None
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """name -> (min, opt, max) shape: the batch axis takes the batch profile, the text axis ``text``; the rest
    stay fixed."""
    ranges = {BATCH_AXIS: (min_batch, opt_batch, max_batch)}
    if text is not None:
        ranges[TEXT_AXIS] = text
    out = {}
    for spec in inputs:
        unknown = [d for d in spec.shape if isinstance(d, str) and d not in ranges]
        if unknown or (spec.shape and spec.shape[0] != BATCH_AXIS):
            known = " and ".join(f"{name!r}" for name in ranges)
            raise EngineBuildError(f"input {spec.name!r} has shape {spec.shape}: only a leading batch axis and "
                                   f"the axes with a profile ({known}) may be symbolic for a TensorRT profile")
        out[spec.name] = tuple(tuple(ranges[d][which] if isinstance(d, str) else int(d) for d in spec.shape)
                               for which in range(3))
    return out


def _shape_arg(shapes: dict[str, tuple], which: int) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in dims[which])}" for name, dims in shapes.items())


def trtexec_command(onnx_path: str | Path, plan_path: str | Path, inputs: Sequence[TensorSpec],
                    batch: tuple[int, int, int], workspace_bytes: int,
                    timing_cache: str | Path | None = "timing.cache", text: tuple[int, int, int] | None = None) -> str:
    """The trtexec command line that builds the same engine as ``build_engine`` (strongly typed, one profile).

    --memPoolSize takes MiB by default and accepts an M suffix; --skipInference makes trtexec stop after
    saving the engine.
    """
    shapes = profile_shapes(inputs, *batch, text=text)
    mib = max(1, int(workspace_bytes) >> 20)
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={plan_path}", "--stronglyTyped",
             f"--minShapes={_shape_arg(shapes, 0)}", f"--optShapes={_shape_arg(shapes, 1)}",
             f"--maxShapes={_shape_arg(shapes, 2)}", f"--memPoolSize=workspace:{mib}M"]
    if timing_cache:
        parts.append(f"--timingCacheFile={timing_cache}")
    parts.append("--skipInference")
    return shlex.join(parts)


def default_timing_cache(tensorrt_version: str, compute_capability: str) -> Path:
    return cache_dir() / "tensorrt" / f"timing-trt{tensorrt_version}-sm{compute_capability.replace('.', '')}.cache"


def format_parser_errors(errors: Sequence[Any]) -> str:
    """One line from the ONNX parser's IParserError objects: description and, when known, the failing node."""
    parts = []
    for err in errors:
        try:
            text = err.desc()
        except AttributeError:
            text = str(err)
        node = ""
        for getter in ("node_name", "node_operator"):
            try:
                value = getattr(err, getter)()
            except (AttributeError, TypeError):
                continue
            if value:
                node += f"{'' if not node else ' '}{value}"
        parts.append(f"{text} [node {node}]" if node else str(text))
    return " | ".join(" ".join(p.split()) for p in parts) or "no error recorded by the parser"


# -- the build --------------------------------------------------------------------------------------------
def _make_logger(trt, log: Log):
    """A TensorRT logger that forwards warnings to ``log`` and keeps errors for the one-line failure message."""

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            level = int(severity)
            if level <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(" ".join(str(msg).split()))
            if level <= int(trt.ILogger.Severity.WARNING):
                log(f"  tensorrt: {msg}")

    return _Logger()


def _network_flags(trt, strongly_typed: bool) -> int:
    """TensorRT 10 needs STRONGLY_TYPED to opt in; on 11 networks are always strongly typed (flag ignored/absent)."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return (1 << int(flag)) if (strongly_typed and flag is not None) else 0


def _load_timing_cache(config, path: Path, log: Log):
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if config.set_timing_cache(cache, ignore_mismatch=False):
        if data:
            log(f"  timing cache: reusing {path}")
        return cache
    log(f"  timing cache {path} does not match this TensorRT/GPU; starting a fresh one")
    cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineBuildError("TensorRT refused an empty timing cache")
    return cache


def build_engine(onnx_path: str | Path, plan_path: str | Path, inputs: Sequence[TensorSpec],
                 config: EngineBuildConfig, log: Log = print) -> EngineInfo:
    """Parse ``onnx_path``, build a plan for ``config`` and write it atomically to ``plan_path``."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineBuildError(f"TensorRT is not installed ({exc}); install it on the target GPU machine") from None
    try:
        cudart = import_cudart()
        cuda_call(cudart, cudart.cudaSetDevice(config.device_index), f"cudaSetDevice({config.device_index})")
        gpu_name, cc = gpu_info(cudart, config.device_index)
    except CudaError as exc:
        raise EngineBuildError(f"no usable CUDA GPU to build on: {exc}") from None
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    if not onnx_path.is_file():
        raise EngineBuildError(f"{onnx_path}: ONNX file not found")
    strongly_typed = not config.fp16_flag
    if config.fp16_flag and getattr(trt.BuilderFlag, "FP16", None) is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed only): "
                               "export an fp16-typed ONNX with 'edge-clipguard export --fp16'")
    shapes = profile_shapes(inputs, config.min_batch, config.opt_batch, config.max_batch, config.text_length)
    started = time.perf_counter()
    logger = _make_logger(trt, log)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        raise EngineBuildError(f"{onnx_path}: the TensorRT ONNX parser failed: {format_parser_errors(errors)}")
    network_inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    if network_inputs != set(shapes):
        raise EngineBuildError(f"{onnx_path}: graph inputs {sorted(network_inputs)} differ from the manifest's "
                               f"{sorted(shapes)}")
    builder_config = builder.create_builder_config()
    builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_bytes))
    if config.fp16_flag:
        builder_config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    builder_config.add_optimization_profile(profile)
    cache_path = Path(config.timing_cache) if config.timing_cache else default_timing_cache(trt.__version__, cc)
    _load_timing_cache(builder_config, cache_path, log)
    log(f"  building {config.precision} engine from {onnx_path.name} on {gpu_name} (batch "
        f"{config.min_batch}:{config.opt_batch}:{config.max_batch}); this can take minutes")
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "see the TensorRT log above"
        raise EngineBuildError(f"{onnx_path}: TensorRT could not build the {config.precision} engine: {detail}")
    with atomic_path(plan_path) as tmp:
        tmp.write_bytes(memoryview(serialized))
    try:
        with atomic_path(cache_path) as tmp:
            tmp.write_bytes(memoryview(builder_config.get_timing_cache().serialize()))
    except OSError as exc:  # the engine is fine; a cache we cannot save only makes the next build slower
        log(f"  timing cache not saved ({exc})")
    seconds = time.perf_counter() - started
    return EngineInfo(tensorrt_version=trt.__version__, gpu_name=gpu_name, compute_capability=cc,
                      precision=config.precision, build_seconds=seconds,
                      profile={"min": config.min_batch, "opt": config.opt_batch, "max": config.max_batch},
                      strongly_typed=strongly_typed, workspace_bytes=int(config.workspace_bytes),
                      timing_cache=str(cache_path),
                      extra={} if config.text_length is None else {
                          "text_length": dict(zip(("min", "opt", "max"), config.text_length))})
