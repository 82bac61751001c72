"""PyTorch -> ONNX for the decoded ClipGuard graph, and its check against PyTorch with ONNX Runtime.

Batch is the only dynamic axis (text length and image size are fixed by the config) so the
graph has static shapes everywhere else, which TensorRT and CUDA graphs want.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..contract import INPUT_NAMES, OUTPUT_NAMES
from ..errors import ExportValidationError
from ..model.clipguard import ClipGuardFusion, DecodedClipGuard, example_inputs

DEFAULT_OPSET = 17


@contextlib.contextmanager
def _mha_fastpath_disabled():
    """The fused MHA fast path has no ONNX symbolic; turn it off while exporting."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def export_onnx(model: ClipGuardFusion, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write the decoded graph (inputs/outputs named per ``contract``) to one self-contained .onnx file."""
    wrapper = DecodedClipGuard(model).eval()
    inputs = example_inputs(model.cfg, batch=2)
    dynamic_axes = {name: {0: "batch"} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    with atomic_path(path) as tmp, _mha_fastpath_disabled(), torch.no_grad(), warnings.catch_warnings():
        # The tracer's warnings (TorchScript exporter deprecation, data-dependent Python ifs in
        # transformers' masking, advanced indexing) were reviewed: the graph is validated below.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, inputs, str(tmp), input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    return Path(path)


@dataclass(frozen=True)
class OutputError:
    """Largest deviation of one output between ONNX Runtime and PyTorch."""

    name: str
    max_abs: float
    max_rel: float


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> list[OutputError]:
    errors = []
    for name, ref in expected.items():
        got = actual[name].astype(np.float64)
        ref = ref.astype(np.float64)
        diff = np.abs(got - ref)
        rel = diff / np.maximum(np.abs(ref), 1e-6)
        errors.append(OutputError(name, float(diff.max(initial=0.0)), float(rel.max(initial=0.0))))
    return errors


def run_onnxruntime(path: str | Path, inputs: dict[str, np.ndarray], threads: int = 2) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), inputs)))


def run_torch(model: ClipGuardFusion, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        outs = DecodedClipGuard(model).eval()(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))
    return {name: out.numpy() for name, out in zip(OUTPUT_NAMES, outs)}


def validate_onnx(path: str | Path, model: ClipGuardFusion, batch_sizes: tuple[int, ...] = (1, 3),
                  atol: dict[str, float] | None = None, seed: int = 123) -> list[OutputError]:
    """Run the ONNX file and PyTorch on fresh random inputs at each batch size; return the worst
    error per output, or raise ExportValidationError naming the outputs past tolerance.

    ``labels`` are compared only where both pick the same top-K order (ties may permute); the
    score, boxes and confidences carry the numeric check.
    """
    import onnx

    onnx.checker.check_model(str(path))
    tolerance = {"score": 1e-4, "boxes": 1e-4, "confidences": 1e-4, "labels": 0.0, **(atol or {})}
    worst: dict[str, OutputError] = {}
    model = model.eval()
    for i, batch in enumerate(batch_sizes):
        ids, mask, pixels = example_inputs(model.cfg, batch=batch, seed=seed + i)
        inputs = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "pixel_values": pixels.numpy()}
        for err in compare_outputs(run_torch(model, inputs), run_onnxruntime(path, inputs)):
            if err.name not in worst or err.max_abs > worst[err.name].max_abs:
                worst[err.name] = err
    errors = [worst[name] for name in OUTPUT_NAMES]
    failed = [e for e in errors if e.max_abs > tolerance[e.name]]
    if failed:
        detail = ", ".join(f"{e.name} max_abs={e.max_abs:.3g} max_rel={e.max_rel:.3g} (tol {tolerance[e.name]:g})"
                           for e in failed)
        raise ExportValidationError(f"{path}: ONNX Runtime disagrees with PyTorch: {detail}")
    return errors
