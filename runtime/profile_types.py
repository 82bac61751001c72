"""What ``profile`` is asked for and what it reports: plain dataclasses shared by ``profile`` and its
PyTorch add-on (``edge_clipguard.train.profile_torch``), so neither has to import the other's module to build a row."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .layer_report import LayerReport
from .startup import StartupRow
from .timing import Stats

STAGES = ("tokenize", "preprocess", "infer", "decode")
PROFILE_BACKENDS = ("auto", "all", "onnxruntime", "openvino", "tensorrt")


@dataclass(frozen=True)
class ProfileRequest:
    bundle: str
    backend: str = "auto"  # auto|all: every backend usable here; or onnxruntime | openvino | tensorrt
    device: str = "auto"
    precisions: tuple[str, ...] = ()  # empty: all
    batch_sizes: tuple[int, ...] = (1,)
    iters: int = 50
    warmup: int = 5
    threads: int | None = None
    compare_torch: str | None = None  # checkpoint path: adds PyTorch eager (+ torch.compile) rows
    torch_compile: bool = True
    image_size: tuple[int, int] = (640, 480)  # (width, height) of the synthetic input image
    stream: bool = True  # add a predict_stream throughput row per artifact at the largest batch size
    startup: bool = True  # time to first prediction of a fresh process, first and second start, per artifact
    verify_key: str | None = None  # passed to the startup measurements' loads (a device app verifies too)
    compile_cache: bool = True  # the measured rows' Predictors use the user's compile cache
    layers: int = 0  # > 0: OpenVINO per-node profiling of each OpenVINO artifact at batch 1, this many top entries


@dataclass(frozen=True)
class ProfileRow:
    """One artifact/backend/batch combination; ``note`` explains a row without numbers."""

    name: str
    backend: str
    device: str
    precision: str
    batch: int
    stages: dict[str, Stats] = field(default_factory=dict)
    e2e: Stats | None = None
    overhead_ms: float | None = None
    throughput: float | None = None
    note: str = ""
    rss_mb: float | None = None  # resident memory of the process after the row
    peak_rss_mb: float | None = None  # the process's peak so far (rows run in order, so it only grows)
    gpu_mb: float | None = None  # used memory of the CUDA device after the row, on cuda rows


@dataclass(frozen=True)
class ProfileReport:
    rows: tuple[ProfileRow, ...]
    environment: dict[str, object]
    request: dict[str, object]
    startup: tuple[StartupRow, ...] = ()
    layers: tuple[LayerReport, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"rows": [asdict(r) for r in self.rows], "environment": self.environment, "request": self.request,
                "startup": [asdict(r) for r in self.startup], "layers": [asdict(r) for r in self.layers],
                "stages": list(STAGES),
                "units": {"latency": "ms", "throughput": "samples/s", "startup": "s"}}
