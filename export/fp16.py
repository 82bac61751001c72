"""``export --fp16``: an fp16-typed ONNX graph (what TensorRT 11 needs for FP16 engines).

TensorRT 11 builds strongly typed networks only, so half precision has to be in the ONNX
types themselves (the FP16 builder flag is gone). The conversion keeps float32 graph inputs
and outputs (Casts at the edges) so every consumer feeds the same arrays as for fp32, and
keeps precision-sensitive ops (LayerNorm, Softmax's reductions, TopK decode) in float32.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..bundle import ONNX, TARGET_ANY, Artifact
from .onnx_export import validate_onnx
from .types import ArtifactReport

# Ops left in float32: normalisation and the score/box decode tail, where fp16 rounding
# would move peaks (TopK order) or the 0-10 score more than the speed is worth.
FP32_OPS = ("LayerNormalization", "TopK", "GatherElements", "Range", "Mod", "Div", "Exp", "Sigmoid")
FP16_SCORE_ATOL = 0.05
FP16_CONFIDENCE_ATOL = 0.01


def sort_nodes_topologically(graph) -> None:
    """Reorder nodes so each runs after its inputs' producers (the converter appends Casts at the end)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a dangling input near node {pending[0].name!r}")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)


def convert_to_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True, op_block_list=list(FP32_OPS))
    sort_nodes_topologically(model.graph)
    onnx.save(model, str(out_path))
    onnx.checker.check_model(str(out_path))
    return Path(out_path)


def write_fp16(fp32_model, fp32_path: Path, out_path: Path):
    """Convert, then check against PyTorch fp32 at two batch sizes with fp16-sized tolerances."""
    started = time.perf_counter()
    convert_to_fp16(fp32_path, out_path)
    errors = validate_onnx(out_path, fp32_model, batch_sizes=(1, 3),
                           atol={"score": FP16_SCORE_ATOL, "confidences": FP16_CONFIDENCE_ATOL,
                                 "boxes": float("inf"), "labels": float("inf")})
    seconds = time.perf_counter() - started
    worst = {e.name: {"max_abs": e.max_abs, "max_rel": e.max_rel} for e in errors}
    accuracy = "max |Δ| vs torch: " + ", ".join(f"{e.name} {e.max_abs:.1e}" for e in errors
                                                if e.name in ("score", "confidences"))
    artifact = Artifact(out_path.name, ONNX, "fp16", TARGET_ANY, None,
                        {"validation": worst, "fp32_ops": list(FP32_OPS)})
    return artifact, ArtifactReport(out_path.name, "fp16", out_path.stat().st_size / 1e6, accuracy, seconds)
