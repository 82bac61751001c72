"""ONNX graph passes and checks for the explicit-quantization (Q/DQ) INT8 graph.

``torch.onnx.export`` of a ModelOpt fake-quant model writes every weight as an fp32
initializer followed by QuantizeLinear -> DequantizeLinear. TensorRT accepts that, but the
file stays fp32-sized; ``fold_weight_quantizers`` stores the INT8 weights instead (keeping
the DequantizeLinear), which is what TensorRT's "pre-quantized weights" path expects.
``qdq_rule_violations`` states the rules the INT8 artifact must follow, as checks.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHT_CONSUMERS = ("Conv", "MatMul", "Gemm", "ConvTranspose")
FLOAT_OPS = ("LayerNormalization", "Softmax", "Sigmoid")
FLOAT_SCOPES = ("score_head", "refer_head")  # the two small heads on the pooled text
# fp32 constants of at least this many values are stored smaller (``shrink_large_constants``): on `base` the word
# table (11.7 M values), the position table (197 K) and the score head's first weight (65 K) as int8, the image
# position codes (102 K + 26 K) as float16. Smaller ones (token types: 768 values, biases, LayerNorms) stay.
LARGE_TABLE_ELEMENTS = 1 << 14


def constant_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Values of initializers and Constant-node outputs, by tensor name."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    result: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            result.setdefault(name, []).append(node)
    return result


def _axis(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def _resolve_identity(name: str, producers: dict[str, onnx.NodeProto]) -> str:
    while name in producers and producers[name].op_type == "Identity":
        name = producers[name].input[0]
    return name


def quantize_array(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear semantics to int8: saturate(round_half_even(x / scale) + zero_point)."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * values.ndim
        shape[axis] = scale.size
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    quantized = np.rint(values.astype(np.float32) / scale.astype(np.float32)) + zero_point.astype(np.int32)
    return np.clip(quantized, -128, 127).astype(np.int8)


def fold_weight_quantizers(model: onnx.ModelProto) -> int:
    """Replace QuantizeLinear(constant fp32 weight) by a stored int8 initializer; returns how many."""
    graph = model.graph
    values = constant_values(graph)
    producers = _producers(graph)
    folded, remove = 0, []
    for node in graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        source = _resolve_identity(node.input[0], producers)
        if source not in values or node.input[1] not in values:
            continue
        scale = values[node.input[1]]
        zero_point = values[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros((), np.int8)
        if zero_point.dtype != np.int8:
            continue
        quantized = quantize_array(values[source], scale, zero_point, _axis(node))
        graph.initializer.append(numpy_helper.from_array(quantized, name=node.output[0]))
        remove.append(node)
        folded += 1
    for node in remove:
        graph.node.remove(node)
    _drop_unused_initializers(graph)
    return folded


def large_gather_tables(graph: onnx.GraphProto, min_elements: int) -> list[onnx.TensorProto]:
    """fp32 initializers of at least ``min_elements`` that a Gather reads (embedding tables)."""
    inits = {init.name: init for init in graph.initializer}
    tables = {}
    for node in graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        if table is not None and table.data_type == onnx.TensorProto.FLOAT and np.prod(table.dims) >= min_elements:
            tables[table.name] = table
    return list(tables.values())


def table_row_scales(values: np.ndarray) -> np.ndarray:
    """One symmetric int8 scale per slice of axis 0 (a table's row, a weight's output channel; max |slice| / 127;
    an all-zero slice gets 1)."""
    scale = (np.abs(values.reshape(values.shape[0], -1)).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    return scale


def int8_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` as int8 with one scale per slice of axis 0: (int8 values, scales)."""
    scale = table_row_scales(values)
    return quantize_array(values, scale, np.zeros_like(scale, dtype=np.int8), axis=0), scale


def _store_int8(graph: onnx.GraphProto, name: str, values: np.ndarray) -> None:
    """Make tensor ``name`` the output of DequantizeLinear(axis 0) over an int8 copy of ``values``."""
    quantized, scale = int8_rows(values)
    names = [f"{name}.int8", f"{name}.scale", f"{name}.zero_point"]
    for stored_name, array in zip(names, (quantized, scale, np.zeros_like(scale, dtype=np.int8))):
        graph.initializer.append(numpy_helper.from_array(array, name=stored_name))
    graph.node.insert(0, helper.make_node("DequantizeLinear", names, [name], axis=0, name=f"{name}/DequantizeLinear"))


def store_large_tables_int8(model: onnx.ModelProto, min_elements: int = LARGE_TABLE_ELEMENTS) -> list[str]:
    """Store big fp32 Gather tables (the word embedding) as int8, one scale per row, + DequantizeLinear(axis 0).

    Weight-only quantization of the lookup: the file holds 1 byte per value (base: 47 + 0.8 MB fp32 -> 12 MB) and
    the rows come back within half a step (max |row| / 254). The pattern -- a constant int8 table, a
    constant per-axis scale, DequantizeLinear on axis 0, feeding Gather's data input -- is the explicit-
    quantization "pre-quantized weights" form TensorRT documents (an IDequantizeLayer between the stored
    low-precision weights and the layer that uses them; docs/concepts/precisions.md cites it). ONNX Runtime
    and OpenVINO read it as it is (OpenVINO 2026.4's CPU plugin expands it to fp32 when it compiles a quantized
    graph: the file is small, its compiled model is not). Returns the tables changed.
    """
    graph = model.graph
    changed = []
    for table in large_gather_tables(graph, min_elements):
        graph.initializer.remove(table)
        _store_int8(graph, table.name, numpy_helper.to_array(table))
        changed.append(table.name)
    return changed


def _store_float16(graph: onnx.GraphProto, name: str, values: np.ndarray) -> None:
    """Make tensor ``name`` the output of Cast(to float32) over a float16 copy of ``values``."""
    graph.initializer.append(numpy_helper.from_array(values.astype(np.float16), name=f"{name}.fp16"))
    graph.node.insert(0, helper.make_node("Cast", [f"{name}.fp16"], [name], to=onnx.TensorProto.FLOAT,
                                          name=f"{name}/Cast"))


def shrink_large_constants(model: onnx.ModelProto, min_elements: int = LARGE_TABLE_ELEMENTS) -> dict[str, list[str]]:
    """Store every fp32 constant of at least ``min_elements`` values that the INT8 graph still holds smaller.

    A lookup table or a linear layer's weight (read by Gather, or by MatMul/Gemm directly or through a
    Transpose): int8, one scale per slice of axis 0, + DequantizeLinear -- the embedding tables (as
    ``store_large_tables_int8``) and the weights of the heads kept float (weight-only: their activations stay
    float). DQ -> Gather and DQ -> (Transpose) -> MatMul are TensorRT's documented pre-quantized-weights form (an
    IDequantizeLayer between the stored weights and the layer using them). Any other constant -- the image
    tower's fixed sine-cosine position codes, added to the features -- float16 + Cast to float32 (plain
    strongly-typed TensorRT). Why not int8 for the codes: their step (1/127) cost 0.7 mAP50 points on OpenVINO
    (512 held-out scenes, reference `base` QAT: 0.912 vs 0.919 float, 0.920 float16). Run after
    ``fold_weight_quantizers``: the weights with their own Q/DQ are int8 by then and are not touched.
    Returns the tensors changed: {"int8": [...], "float16": [...]}."""
    graph = model.graph
    consumers = _consumers(graph)
    values = {}
    for init in graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and np.prod(init.dims) >= min_elements:
            values[init.name] = init
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is not None and value.data_type == onnx.TensorProto.FLOAT and np.prod(value.dims) >= min_elements:
            values[node.output[0]] = node
    changed: dict[str, list[str]] = {"int8": [], "float16": []}
    for name, holder in values.items():
        if isinstance(holder, onnx.TensorProto):
            array = numpy_helper.to_array(holder)
            graph.initializer.remove(holder)
        else:
            array = numpy_helper.to_array(next(a.t for a in holder.attribute if a.name == "value"))
            graph.node.remove(holder)
        users = consumers.get(name, [])
        users = [u for v in users for u in ([v] if v.op_type != "Transpose" else consumers.get(v.output[0], []))]
        weight = users and all(u.op_type in ("Gather", *WEIGHT_CONSUMERS) for u in users)
        (_store_int8 if weight else _store_float16)(graph, name, array)
        changed["int8" if weight else "float16"].append(name)
    return changed


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def _in_scope(node: onnx.NodeProto, scopes: Iterable[str]) -> bool:
    return any(f"/{scope}/" in node.name or node.name.startswith(f"{scope}/") for scope in scopes)


def qdq_rule_violations(model: onnx.ModelProto, float_scopes: Iterable[str] = FLOAT_SCOPES,
                        float_ops: Iterable[str] = FLOAT_OPS) -> list[str]:
    """Every way the graph breaks our TensorRT INT8 rules (empty list = compliant):

    - opset >= 13 (per-axis Q/DQ); at least one Q/DQ pair exists;
    - every Q/DQ is int8 with zero-point 0 (symmetric);
    - a DequantizeLinear on a stored weight feeding Conv/MatMul/Gemm (directly or via
      Transpose) is per output channel, axis 0; one feeding a Gather (an embedding table) is per row,
      axis 0, and is the Gather's data input; activation Q/DQ have one scale (per tensor);
    - ``float_ops`` (LayerNorm, Softmax, the sigmoids) never read a DequantizeLinear output, so
      they compute on float inputs (their output may be quantized for the next GEMM, as
      TensorRT expects); nodes inside ``float_scopes`` (the score head) have no activation Q/DQ (their big
      weights may be stored int8, weight-only: the layer still computes in float).
    """
    graph = model.graph
    problems = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        problems.append(f"opset {opset} < 13 (per-channel Q/DQ needs 13)")
    values = constant_values(graph)
    producers, consumers = _producers(graph), _consumers(graph)
    qdq = [n for n in graph.node if n.op_type in QDQ_OPS]
    if not any(n.op_type == "DequantizeLinear" for n in qdq):
        problems.append("no DequantizeLinear nodes: the graph is not quantized")
    for node in qdq:
        zero_point = values.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero_point is None or zero_point.dtype != np.int8 or np.any(zero_point != 0):
            problems.append(f"{node.name}: zero point must be int8 0 (symmetric), got {zero_point!r}")
        scale = values.get(node.input[1])
        if scale is None:
            problems.append(f"{node.name}: scale is not a constant")
            continue
        stored_weight = node.op_type == "DequantizeLinear" and node.input[0] in values
        if stored_weight:
            users = consumers.get(node.output[0], [])
            users = [u for v in users for u in ([v] if v.op_type != "Transpose" else consumers.get(v.output[0], []))]
            if any(u.op_type in WEIGHT_CONSUMERS for u in users) and (scale.size <= 1 or _axis(node) != 0):
                problems.append(f"{node.name}: weight must be quantized per output channel (axis 0)")
            gathers = [u for u in users if u.op_type == "Gather"]
            if gathers and (_axis(node) != 0 or any(g.input[0] != node.output[0] for g in gathers)):
                problems.append(f"{node.name}: a quantized table must be per row (axis 0) and Gather's data input")
        elif scale.size != 1:
            problems.append(f"{node.name}: activation must be quantized per tensor, got {scale.size} scales")
        if _in_scope(node, float_scopes) and not stored_weight:
            problems.append(f"{node.name}: Q/DQ inside a float-only scope {tuple(float_scopes)}")
    for node in graph.node:
        if node.op_type not in float_ops:
            continue
        if any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input):
            problems.append(f"{node.name}: {node.op_type} reads a DequantizeLinear output (must stay float)")
    return problems
