"""Cut an exported graph in two at the text features: a text graph and an image + fusion graph.

Why: a camera app asks one question of many frames, and the text encoder's output for a text does not depend
on the image, so the runtime should run it once per text and keep the result (``runtime.text_features``).
Cutting the finished ONNX file, rather than exporting two graphs from PyTorch, gives every precision its parts
from the graph that was already checked (fp32, the Q/DQ INT8 graph, ONNX Runtime's CPU INT8 graph, fp16), and
the parts hold exactly the nodes, quantizers and weights of the whole.

The cut is the one tensor that leaves the model's ``text_proj`` module (PyTorch's exporter names nodes after
their module path), renamed to the contract's ``text_features``; a Cast that a precision pass put after it
(fp16 keeps LayerNorm in float32) goes to the fusion side, so the tensor between the parts is float32 in every
precision. ``check_parts`` runs both parts one after the other and the whole graph on the same inputs with
ONNX Runtime: export keeps the parts only when they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..bundle import ArtifactParts
from ..contract import (
    ATTENTION_MASK,
    BATCH_AXIS,
    FUSION_PART_INPUTS,
    OUTPUT_NAMES,
    TEXT_AXIS,
    TEXT_FEATURES,
    TEXT_PART_INPUTS,
)
from ..errors import ExportValidationError

TEXT_MODULE_PREFIX = "/model/text_proj/"  # node names of ClipGuardFusion.text_proj in the exported graph
FLOAT = 1  # onnx.TensorProto.FLOAT


class NotSplittable(ValueError):
    """The graph has no single float32 tensor between its text projection and the rest."""


@dataclass(frozen=True)
class SplitGraph:
    """The two parts written for one artifact, and the width of the features between them."""

    parts: ArtifactParts
    feature_dim: int


def part_names(file: str) -> ArtifactParts:
    """``model.int8.onnx`` -> ``model.int8.text.onnx`` and ``model.int8.fusion.onnx``."""
    stem = file.removesuffix(".onnx")
    return ArtifactParts(text=f"{stem}.text.onnx", fusion=f"{stem}.fusion.onnx")


def text_feature_boundary(graph) -> str:
    """The name of the one tensor that leaves ``text_proj`` for the rest of the graph (before any Cast a
    precision pass appended to it). NotSplittable when there is none or more than one."""
    producer = {out: node for node in graph.node for out in node.output}
    inside = {out for node in graph.node if node.name.startswith(TEXT_MODULE_PREFIX) for out in node.output}
    used_outside = {name for node in graph.node if not node.name.startswith(TEXT_MODULE_PREFIX) for name in node.input}
    used_outside |= {out.name for out in graph.output}
    found = set()
    for name in inside & used_outside:
        node = producer[name]
        while node.op_type == "Cast" and node.input[0] in inside:  # fp16's cast of a float32 LayerNorm output
            name = node.input[0]
            node = producer[name]
        found.add(name)
    if len(found) != 1:
        raise NotSplittable(f"expected one tensor leaving {TEXT_MODULE_PREFIX}, found {sorted(found) or 'none'}")
    return found.pop()


def _rename(graph, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for info in (*graph.input, *graph.output, *graph.value_info):
        if info.name == old:
            info.name = new


def _set_feature_shape(info, feature_dim: int) -> None:
    dims = info.type.tensor_type.shape.dim
    del dims[:]
    for value in (BATCH_AXIS, TEXT_AXIS, feature_dim):
        dim = dims.add()
        if isinstance(value, str):
            dim.dim_param = value
        else:
            dim.dim_value = value


def _feature_info(model, boundary: str):
    for info in model.graph.value_info:
        if info.name == boundary:
            return info
    raise NotSplittable(f"shape inference gave no type for {boundary!r}")


def split_model(model) -> tuple[object, object, int]:
    """(text model, fusion model, feature_dim) of an in-memory ONNX model."""
    import onnx
    from onnx.utils import Extractor

    inferred = onnx.shape_inference.infer_shapes(model)
    boundary = text_feature_boundary(inferred.graph)
    info = _feature_info(inferred, boundary)
    dims = info.type.tensor_type.shape.dim
    if info.type.tensor_type.elem_type != FLOAT or len(dims) != 3 or not dims[2].dim_value:
        raise NotSplittable(f"{boundary!r} is not float32 [batch, text, features]")
    feature_dim = int(dims[2].dim_value)
    extractor = Extractor(inferred)
    text = extractor.extract_model(list(TEXT_PART_INPUTS), [boundary])
    fusion = extractor.extract_model([boundary, *FUSION_PART_INPUTS[1:]], list(OUTPUT_NAMES))
    for part in (text, fusion):
        _rename(part.graph, boundary, TEXT_FEATURES)
        del part.graph.value_info[:]  # inferred shapes were only needed to cut; the runtimes infer their own
        del part.opset_import[:]
        part.opset_import.extend(model.opset_import)
        part.ir_version = model.ir_version
    _set_feature_shape(text.graph.output[0], feature_dim)
    _set_feature_shape(next(i for i in fusion.graph.input if i.name == TEXT_FEATURES), feature_dim)
    if [i.name for i in fusion.graph.input] != list(FUSION_PART_INPUTS):
        raise NotSplittable(f"the fusion part needs inputs {[i.name for i in fusion.graph.input]}, "
                            f"expected {list(FUSION_PART_INPUTS)}")
    return text, fusion, feature_dim


def split_artifact(bundle: Path, file: str) -> SplitGraph:
    """Write ``file``'s two parts next to it (atomically each); NotSplittable leaves nothing behind."""
    import onnx

    text, fusion, feature_dim = split_model(onnx.load(str(bundle / file)))
    names = part_names(file)
    for part, name in ((text, names.text), (fusion, names.fusion)):
        with atomic_path(bundle / name) as tmp:
            onnx.save(part, str(tmp))
        onnx.checker.check_model(str(bundle / name))
    return SplitGraph(names, feature_dim)


def run_parts(text_session, fusion_session, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outputs of the text part then the fusion part on one whole-graph feed."""
    features = text_session.run([TEXT_FEATURES], {name: feed[name] for name in TEXT_PART_INPUTS})[0]
    fusion_feed = {TEXT_FEATURES: features, ATTENTION_MASK: feed[ATTENTION_MASK],
                   FUSION_PART_INPUTS[2]: feed[FUSION_PART_INPUTS[2]]}
    return dict(zip(OUTPUT_NAMES, fusion_session.run(list(OUTPUT_NAMES), fusion_feed)))


def check_parts(bundle: Path, file: str, parts: ArtifactParts, feeds: list[dict[str, np.ndarray]],
                score_atol: float) -> float:
    """Largest |score| difference between the parts run in turn and the whole graph over ``feeds`` (ONNX Runtime,
    CPU); ExportValidationError when it is above ``score_atol`` or any output's shape or dtype differs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    sessions = [ort.InferenceSession(str(bundle / name), options, providers=["CPUExecutionProvider"])
                for name in (file, parts.text, parts.fusion)]
    worst = 0.0
    for feed in feeds:
        whole = dict(zip(OUTPUT_NAMES, sessions[0].run(list(OUTPUT_NAMES), feed)))
        cut = run_parts(sessions[1], sessions[2], feed)
        for name in OUTPUT_NAMES:
            if whole[name].shape != cut[name].shape or whole[name].dtype != cut[name].dtype:
                raise ExportValidationError(f"{bundle / parts.fusion}: output {name!r} is {cut[name].dtype} "
                                            f"{cut[name].shape}, the whole graph's {whole[name].dtype} "
                                            f"{whole[name].shape}")
        worst = max(worst, float(np.abs(whole["score"] - cut["score"]).max()))
    if worst > score_atol:
        raise ExportValidationError(f"{bundle / file}: its parts run in turn give scores {worst:.3g} away from the "
                                    f"whole graph's (tolerance {score_atol:g})")
    return worst


PARTS_SCORE_ATOL = 1e-3  # the parts hold the whole graph's nodes: only kernel choice may move a score


def add_parts(bundle: Path, artifacts: list, cfg, seed: int = 321) -> tuple[list, int | None, list[str]]:
    """Cut every ONNX artifact in ``bundle`` in two and check the parts against the whole (two batch sizes, full
    and short text). Returns (artifacts with ``parts`` set where cut, feature_dim or None, notes); an artifact
    that cannot be cut keeps only its whole graph and gets a note."""
    from dataclasses import replace

    from ..bundle import ONNX
    from .onnx_export import random_feeds

    feeds = random_feeds(cfg, (1, 3), seed)
    out, notes, feature_dim = [], [], None
    for art in artifacts:
        if art.kind != ONNX:
            out.append(art)
            continue
        try:
            split = split_artifact(bundle, art.file)
        except NotSplittable as exc:
            notes.append(f"{art.file}: not cut at the text features ({exc}); the runtime runs it whole")
            out.append(art)
            continue
        worst = check_parts(bundle, art.file, split.parts, feeds, PARTS_SCORE_ATOL)
        feature_dim = split.feature_dim
        out.append(replace(art, parts=split.parts, details={**art.details, "parts_max_score_diff": worst}))
    return out, feature_dim, notes
