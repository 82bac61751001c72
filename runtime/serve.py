"""``serve``: the bundle's Predictor behind Triton Inference Server, through PyTriton (the ``[serve]`` extra).

One Triton model (``clipguard`` by default) with the runtime's whole pipeline inside it, so clients send
what they have, a text and an encoded image file, and get back what ``Predictor.predict`` returns:

    inputs   text         BYTES  [batch, 1]  UTF-8 text
             image        BYTES  [batch, 1]  an encoded image file (JPEG, PNG, ...), never a path
    outputs  score        FP32   [batch, 1]  0-10
             boxes        FP32   [batch, K, 4]  x1,y1,x2,y2 in the ORIGINAL image's pixels (after EXIF)
             confidences  FP32   [batch, K]
             labels       INT64  [batch, K]  class index; -1 in padding rows
             count        INT32  [batch, 1]  how many of the K rows are detections, most confident first

K is the bundle's ``top_k`` (manifest): detections vary in number per image (min_confidence, NMS), so every
image's rows are padded to K (boxes and confidences 0, label -1) and ``count`` says how many are real. The
class names, score range and K are in the model config's ``parameters`` (``GET /v2/models/clipguard/config``).

Dynamic batching: Triton queues concurrent requests for up to ``max_queue_delay_us`` and hands them to the
infer function together (at most ``max_batch`` images); the images are decoded on a small thread pool and
inferred as one batch. A bad request (corrupt image, empty text) batched with good ones is answered in its own
``error`` output (zeros elsewhere) and fails no other request; alone, or batched only with bad ones, it gets
Triton's error answer with the reason. ``--no-dynamic-batching`` sends each request alone;
``benchmarks/bench_serve.py`` measures both. The Predictors compile every shape a request can bring before the
server reports ready (``Predictor.prepare``).

Modules: the wire format is ``serve_codec`` (pure), the process setup (libpython, ports) ``serve_process``; this
module is the PyTriton adapter and the server's lifecycle.

Safety: image bytes are decoded from memory (``bytes`` in, never a str or path), text bytes must be UTF-8,
shapes and item counts are checked, and PyTriton locks Triton's model-repository, shared-memory, statistics,
trace and logging endpoints behind a token only this process knows, so no request can load a model or make
the server read a file. The server listens on loopback unless ``--host`` says otherwise.

The libpython trap (``serve_process``): PyTriton's Python-backend stub (a child of tritonserver) loads
libpython through the dynamic loader; on a machine with a system libpython of another patch release it picks
that one and dies with "'_thread.RLock' object has no attribute '_recursion_count'" (pytriton issue 51).
``use_own_libpython`` puts this interpreter's library directory first on LD_LIBRARY_PATH before Triton starts
(both children inherit it) and refuses, with the reason and the fix, when this interpreter has no shared
libpython.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..contract import BOXES, CONFIDENCES, LABELS, SCORE
from ..errors import ClipGuardError
from .decode import DEFAULT_MIN_CONFIDENCE, DEFAULT_NMS_IOU
from .errors import InputError, ServeError
from .serve_codec import (  # noqa: F401 - the wire format's names, re-exported for callers of serve
    COUNT,
    ERROR,
    IMAGE,
    MAX_IMAGE_BYTES,
    MODEL_NAME,
    OUTPUT_NAMES,
    PAD_LABEL,
    TEXT,
    call_error,
    manifest_parameters,
    pack_results,
    request_items,
)
from .serve_process import (  # noqa: F401 - re-exported likewise
    _last_error_line,
    _startup_hint,
    check_ports_free,
    check_stub_libpython,
    own_libpython,
    stub_libpython,
    use_own_libpython,
)
from .stream import PreparedRow, prepare_row, stack_rows

INSTALL_HINT = "pip install 'edge-clipguard[serve]'"


@dataclass(frozen=True)
class ServeConfig:
    """What ``serve`` binds where. Ports must differ; ``threads`` None splits the CPUs between instances."""

    bundle: str
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 16
    max_queue_delay_us: int = 2000
    dynamic_batching: bool = True
    instances: int = 1
    backend: str = "auto"
    device: str = "auto"
    precision: str | None = None
    threads: int | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    nms_iou: float = DEFAULT_NMS_IOU
    verify_key: str | None = None
    compile_cache: bool = True
    model_name: str = MODEL_NAME
    drain_timeout_s: int = 5
    prepare_workers: int = 2

    def __post_init__(self) -> None:
        ports = {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}
        for flag, port in ports.items():
            if not 1 <= port <= 65535:
                raise ServeError(f"{flag}: {port} is not a TCP port (1-65535)")
        if len(set(ports.values())) != len(ports):
            raise ServeError(f"--http-port, --grpc-port and --metrics-port must differ, got {list(ports.values())}")
        for flag, value, low in (("--max-batch", self.max_batch, 1), ("--instances", self.instances, 1),
                                 ("--max-queue-delay-us", self.max_queue_delay_us, 0),
                                 ("--drain-timeout", self.drain_timeout_s, 1),
                                 ("prepare_workers", self.prepare_workers, 1)):
            if value < low:
                raise ServeError(f"{flag} must be >= {low}, got {value}")

    @property
    def ports(self) -> dict[str, int]:
        return {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}


# ---- requests in, responses out (pure; no PyTriton needed) ------------------------------------
class BatchInfer:
    """One model instance's infer function: PyTriton requests in, one dict of output arrays per request out.

    Each item is parsed, decoded and letterboxed on its own (a thread pool); only the good ones are inferred, as
    one batch. A bad item is answered in its own ``error`` output row when the call holds good items too
    (PyTriton 0.7 can only fail a whole call, which would fail the good requests batched with it); a call of
    nothing but bad items raises ClipGuardError, so Triton answers each with an error and keeps serving. A
    backend failure that is not a ClipGuardError raises PyTritonUnrecoverableError, which stops the server,
    since the backend's state is then unknown.
    """

    def __init__(self, predictor, pool: ThreadPoolExecutor, unrecoverable: type[Exception] = RuntimeError):
        self.predictor = predictor
        self.pool = pool
        self.top_k = predictor.manifest.top_k
        self.unrecoverable = unrecoverable

    def __call__(self, requests: Sequence) -> list[dict[str, np.ndarray]]:
        answers: list[list[PreparedRow | str]] = []  # per request, per item: a prepared row or why it was refused
        for request in requests:
            try:
                pairs = request_items(request.data if hasattr(request, "data") else request)
            except ClipGuardError as exc:  # the request as a whole is malformed: every item of it is refused
                rows = np.asarray(next(iter((request.data if hasattr(request, "data") else request).values()), []))
                answers.append([str(exc)] * max(1, len(rows)))
                continue
            answers.append(list(self.pool.map(lambda it: prepare_row(self.predictor, it[0], *it[1]),
                                              enumerate(pairs))))
        good = [row for items in answers for row in items if isinstance(row, PreparedRow)]
        if not good:
            bad = [(r, next(m for m in items if isinstance(m, str))) for r, items in enumerate(answers)]
            raise InputError(call_error(bad, len(requests)))  # Triton logs it and answers every request with it
        tokens, pixels = stack_rows(good)
        try:
            outputs = self.predictor.infer(tokens, pixels)
        except ClipGuardError:
            raise
        except Exception as exc:  # the backend itself failed: its state is unknown, stop serving
            raise self.unrecoverable(f"backend {self.predictor.describe()} failed: {type(exc).__name__}: {exc}") \
                from exc
        results = iter(self.predictor.decode(outputs, tokens, pixels))
        return [pack_results([next(results) if isinstance(row, PreparedRow) else row for row in items], self.top_k)
                for items in answers]


def model_parameters(predictor, config: ServeConfig) -> dict[str, str]:
    """What a client needs to read the outputs, for the model config's ``parameters`` (strings)."""
    return {**manifest_parameters(predictor.manifest), "padding": "rows past count: boxes 0, confidences 0, labels -1",
            "boxes": "x1,y1,x2,y2 in the original image's pixels", "min_confidence": str(config.min_confidence),
            "nms_iou": str(config.nms_iou), "artifact": predictor.describe()}


def load_predictors(config: ServeConfig) -> list:
    """One Predictor per model instance (threads split between them when not given)."""
    from .predictor import Predictor

    threads = config.threads
    if threads is None and config.instances > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // config.instances)
    predictors = []
    try:
        for _ in range(config.instances):
            predictors.append(Predictor.load(config.bundle, backend=config.backend, device=config.device,
                                             precision=config.precision, threads=threads,
                                             min_confidence=config.min_confidence, nms_iou=config.nms_iou,
                                             verify_key=config.verify_key, compile_cache=config.compile_cache))
            # Compile every shape a request can bring now, so "ready" means ready (backends compile lazily).
            predictors[-1].prepare((1, config.max_batch))
    except BaseException:
        for predictor in predictors:
            predictor.close()
        raise
    return predictors


# ---- the server ------------------------------------------------------------------------------------
def _add_model_parameters(triton, model_name: str, parameters: Mapping[str, str]) -> bool:
    """Put ``parameters`` into the bound model's config. PyTriton 0.7 has no public way to; this sets the
    model's backend parameters before Triton loads it, and returns False if PyTriton's internals differ."""
    try:
        model = next(m for m in triton._model_manager.models if m.model_name == model_name)
        model._get_triton_model_config().backend_parameters.update(parameters)
        model.generate_model(triton._workspace.model_store_path)  # bind already wrote config.pbtxt: rewrite it
        return True
    except Exception:
        return False


def serve(config: ServeConfig, log: Callable[[str], None] | None = None,
          stop_event: threading.Event | None = None) -> None:
    """Load the bundle, start Triton, serve until SIGTERM/SIGINT (or ``stop_event``), drain, return.

    Raises ServeError when the server cannot start or stops on its own (a backend crash)."""
    log = log or (lambda msg: print(f"edge-clipguard serve: {msg}", file=sys.stderr, flush=True))
    try:
        from pytriton.exceptions import PyTritonUnrecoverableError
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig, TritonLifecyclePolicy
    except ImportError as exc:
        raise ServeError(f"serve needs PyTriton and tritonclient ({exc.name or exc} is missing): {INSTALL_HINT}") \
            from None
    check_ports_free(config.host, config.ports)
    note = use_own_libpython()
    check_stub_libpython(os.environ)
    stop = stop_event or threading.Event()
    handlers: dict = {}
    predictors: list = []
    pool = triton = None
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):  # inside the try: a failed start restores them
                handlers[sig] = signal.signal(sig, lambda *_: stop.set())
        logging.getLogger("pytriton").setLevel(logging.ERROR)  # bad requests: our one line, not a traceback each
        predictors = load_predictors(config)
        if stop.is_set():  # Ctrl-C or SIGTERM while the model loaded: stop before Triton starts, never "ready"
            log("stopping: asked to stop while the model was loading")
            return
        pool = ThreadPoolExecutor(max_workers=config.prepare_workers, thread_name_prefix="clipguard-serve")
        top_k = predictors[0].manifest.top_k
        triton = Triton(config=TritonConfig(
            http_address=config.host, http_port=config.http_port, grpc_address=config.host,
            grpc_port=config.grpc_port, metrics_address=config.host, metrics_port=config.metrics_port,
            allow_metrics=True, exit_timeout_secs=config.drain_timeout_s, log_verbose=0),
            # The model goes into Triton's repository at bind time, so Triton loads it while starting and only
            # then listens: /v2/health/ready never answers 200 for a server that does not know the model.
            triton_lifecycle_policy=TritonLifecyclePolicy(launch_triton_on_startup=True, local_model_store=True))
        batcher = DynamicBatcher(max_queue_delay_microseconds=config.max_queue_delay_us) \
            if config.dynamic_batching else None
        triton.bind(
            model_name=config.model_name,
            infer_func=[BatchInfer(p, pool, PyTritonUnrecoverableError) for p in predictors],
            inputs=[Tensor(name=TEXT, dtype=bytes, shape=(1,)), Tensor(name=IMAGE, dtype=bytes, shape=(1,))],
            outputs=[Tensor(name=SCORE, dtype=np.float32, shape=(1,)),
                     Tensor(name=BOXES, dtype=np.float32, shape=(top_k, 4)),
                     Tensor(name=CONFIDENCES, dtype=np.float32, shape=(top_k,)),
                     Tensor(name=LABELS, dtype=np.int64, shape=(top_k,)),
                     Tensor(name=COUNT, dtype=np.int32, shape=(1,)),
                     Tensor(name=ERROR, dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=True, max_batch_size=config.max_batch, batcher=batcher),
            strict=True)
        if not _add_model_parameters(triton, config.model_name, model_parameters(predictors[0], config)):
            log("warning: this PyTriton version does not take model config parameters; class names are only in "
                "the bundle's manifest.json")
        if stop.is_set():
            log("stopping: asked to stop while the model was loading")
            return
        try:
            triton.run()
        except Exception as exc:
            text = str(exc)
            raise ServeError(f"Triton did not start: {_last_error_line(text)}{_startup_hint(text)}") from None
        batching = (f"dynamic batching up to {config.max_batch}, {config.max_queue_delay_us} us queue delay"
                    if config.dynamic_batching else f"no dynamic batching (max batch {config.max_batch} per request)")
        log(f"model {config.model_name!r} ready: http://{config.host}:{config.http_port} "
            f"grpc {config.host}:{config.grpc_port} metrics http://{config.host}:{config.metrics_port}/metrics; "
            f"{predictors[0].describe()}; {config.instances} instance(s), {batching}; {note}; "
            "SIGTERM or Ctrl-C stops")
        crashed = False
        while not stop.wait(0.5):
            if not triton.is_alive():
                crashed = True
                break
        if crashed:
            raise ServeError("Triton stopped on its own (a backend failure or tritonserver exit; see the log above)")
        log(f"stopping: draining in-flight requests (up to {config.drain_timeout_s} s)")
    finally:
        if triton is not None:
            triton.stop()
        if pool is not None:
            pool.shutdown(wait=True)
        for p in predictors:
            p.close()
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
        log("stopped")
