"""PyTorch -> ONNX for the decoded ClipGuard graph, and its check against PyTorch with ONNX Runtime.

Batch and text length are the dynamic axes (a short query runs short; the image size is fixed by the
config), so the graph has static shapes everywhere else, which TensorRT and CUDA graphs want. The text axis
is validated at the full length and at a short one.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..contract import ATTENTION_MASK, BATCH_AXIS, INPUT_IDS, INPUT_NAMES, OUTPUT_NAMES, TEXT_AXIS
from ..errors import ExportValidationError
from ..model.clipguard import ClipGuardFusion, DecodedClipGuard, example_inputs
from .detections import DENSE_KEYS, OutputError, compare_outputs, merge_worst

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
    dynamic_axes = {name: {0: BATCH_AXIS} for name in (*INPUT_NAMES, *OUTPUT_NAMES)}
    for name in (INPUT_IDS, ATTENTION_MASK):
        dynamic_axes[name][1] = TEXT_AXIS
    with atomic_path(path) as tmp, _mha_fastpath_disabled(), torch.no_grad(), warnings.catch_warnings():
        # The tracer's warnings (TorchScript exporter deprecation, data-dependent Python ifs in
        # transformers' masking, advanced indexing) were reviewed: the graph is validated below.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, inputs, str(tmp), input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    return Path(path)


def random_feeds(cfg, batch_sizes: tuple[int, ...], seed: int) -> list[dict[str, np.ndarray]]:
    """Fresh random graph inputs, one feed per batch size (the batch axis is dynamic); the text axis alternates
    between the config's max_length and a short length (it is dynamic too)."""
    feeds = []
    for i, batch in enumerate(batch_sizes):
        length = cfg.text.max_length if i % 2 == 0 else min(cfg.text.max_length, 8)
        ids, mask, pixels = example_inputs(cfg, batch=batch, seed=seed + i, length=length)
        feeds.append(dict(zip(INPUT_NAMES, (ids.numpy(), mask.numpy(), pixels.numpy()))))
    return feeds


def run_onnxruntime(path: str | Path, inputs: dict[str, np.ndarray], threads: int = 2) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), inputs)))


def run_torch(model: ClipGuardFusion, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch's outputs (``OUTPUT_NAMES``) plus every heat-map cell decoded, peak or not (``DENSE_KEYS``):
    the candidates a runtime's detections are matched against when peaks tie or near-tied neighbours swap."""
    model.eval()
    with torch.no_grad():
        raw = model(*(torch.from_numpy(inputs[n]) for n in INPUT_NAMES))
        outs = model.decode(raw)
        _, *dense = model.decode(raw, top_k=raw["heatmap"][0].numel(), peaks_only=False)
    return {name: out.numpy() for name, out in zip((*OUTPUT_NAMES, *DENSE_KEYS), (*outs, *dense))}


def validate_onnx(path: str | Path, model: ClipGuardFusion, batch_sizes: tuple[int, ...] = (1, 3),
                  atol: dict[str, float] | None = None, seed: int = 123) -> list[OutputError]:
    """Run the ONNX file and PyTorch on fresh random inputs at each batch size; return the worst
    error per output, or raise ExportValidationError naming the outputs past tolerance.

    Detections are compared order-independently (``detections``): tied peaks may fill the top-K
    slots in another order or with another tied cell, and that is not an error.
    """
    import onnx

    onnx.checker.check_model(str(path))
    tolerance = {"score": 1e-4, "boxes": 1e-4, "confidences": 1e-4, "labels": 0.0, **(atol or {})}
    worst: dict[str, OutputError] = {}
    for inputs in random_feeds(model.cfg, batch_sizes, seed):
        errors = compare_outputs(run_torch(model, inputs), run_onnxruntime(path, inputs), tolerance["confidences"])
        merge_worst(worst, errors)
    errors = [worst[name] for name in OUTPUT_NAMES]
    failed = [e for e in errors if e.max_abs > tolerance[e.name]]
    if failed:
        detail = ", ".join(f"{e.name} max_abs={e.max_abs:.3g} max_rel={e.max_rel:.3g} (tol {tolerance[e.name]:g})"
                           for e in failed)
        raise ExportValidationError(f"{path}: ONNX Runtime disagrees with PyTorch: {detail}")
    return errors
