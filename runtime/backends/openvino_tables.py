"""Keep the INT8 file's int8 lookup tables int8 inside OpenVINO's compiled model.

The INT8 export stores each large lookup table (the text tower's word and position embeddings) as int8 rows with
one scale per row, dequantized before the Gather that reads it: DequantizeLinear -> Gather, the pattern TensorRT
documents for pre-quantized weights. OpenVINO 2026.4 reads that as
``Gather(Multiply(Subtract(Convert(int8 table), zero point), scale), ids)``. In a graph that also has quantized
activations (FakeQuantize) its CPU plugin leaves int8 tables to its low-precision pipeline, which folds the
dequantization into an fp32 constant: the 11.7 M-entry word table becomes 47 MB of fp32 in memory, and the base
text part's compiled blob 58 MB for a 23 MB file (more to read, hash and import on every start).

Gathering the int8 rows first and dequantizing only the rows gathered computes the same numbers, elementwise:
``((q - z) * s)[ids] == (q[ids] - z[ids]) * s[ids]``. Rewritten so, nothing is left to fold; the table stays int8
(11.7 MB) and a lookup converts a few rows. The ONNX file is not changed: TensorRT and ONNX Runtime read the
exporter's pattern as it is; this is how OpenVINO is given the same graph.
"""

from __future__ import annotations

INT8_TYPES = ("i8", "u8")


def gather_before_dequantize(model) -> int:
    """Rewrite, in place, every ``Gather`` whose data is a dequantized int8 constant so that it gathers the int8
    rows and dequantizes the rows it gathered. Returns how many were rewritten (0: nothing of the kind)."""
    import openvino.opset13 as ops

    rewritten = 0
    for gather in model.get_ordered_ops():
        if gather.get_type_name() != "Gather" or gather.get_input_size() != 3:
            continue
        found = _dequantized_table(gather.input_value(0).get_node())
        if found is None:
            continue
        table, zero_point, scale = found
        factors = [(factor, _layout(factor, table)) for factor in (zero_point, scale) if factor is not None]
        if any(layout is None for _, layout in factors) or not _gathers_rows(gather):
            continue  # a layout the rewrite does not know: OpenVINO gets the graph as written
        ids, axis = gather.input_value(1), gather.input_value(2)
        # One value per row: the gathered rows' values; one value for all: itself.
        for_rows = [ops.gather(factor, ids, axis) if layout == "row" else factor for factor, layout in factors]
        rows = ops.convert(ops.gather(table, ids, axis), gather.get_output_element_type(0))
        if zero_point is not None:
            rows = ops.subtract(rows, for_rows[0])
        values = ops.multiply(rows, for_rows[-1])
        values.set_friendly_name(gather.get_friendly_name())  # profiles and layer reports keep their names
        gather.output(0).replace(values.output(0))
        rewritten += 1
    return rewritten


def _gathers_rows(gather) -> bool:
    """The Gather picks rows: axis 0 (a constant) and no batch dimensions."""
    axis = gather.input_value(2).get_node()
    if axis.get_type_name() != "Constant" or gather.get_attributes().get("batch_dims", 0) != 0:
        return False
    values = axis.get_vector()
    return len(values) == 1 and int(values[0]) in (0, -len(gather.get_input_partial_shape(0)))


def _layout(factor, table) -> str | None:
    """How a scale or zero point covers the table: "row" (one value per row, shape [rows, 1, ...]), "all" (one
    value), or None (any other layout, e.g. per column: gathering rows would not carry it)."""
    shape, table_shape = factor.get_partial_shape(), table.get_partial_shape()
    if shape.is_dynamic or table_shape.is_dynamic:
        return None
    dims, table_dims = list(shape.to_shape()), list(table_shape.to_shape())
    if all(d == 1 for d in dims):
        return "all"
    if len(dims) == len(table_dims) and dims[0] == table_dims[0] and all(d == 1 for d in dims[1:]):
        return "row"
    return None


def _dequantized_table(node):
    """(int8 table, zero point or None, scale) when ``node`` is ``Multiply(Subtract(Convert(int8 Constant), zp),
    scale)`` or ``Multiply(Convert(int8 Constant), scale)`` with the scale (and zero point) constant subgraphs,
    else None."""
    if node.get_type_name() != "Multiply":
        return None
    left, right = node.input_value(0), node.input_value(1)
    for values, scale in ((left, right), (right, left)):
        zero_point = None
        inner = values.get_node()
        if inner.get_type_name() == "Subtract":
            zero_point, inner = inner.input_value(1), inner.input_value(0).get_node()
        if inner.get_type_name() != "Convert":
            continue
        table = inner.input_value(0)
        if (table.get_node().get_type_name() == "Constant"
                and table.get_element_type().get_type_name() in INT8_TYPES
                and _constant_only(scale) and (zero_point is None or _constant_only(zero_point))):
            return table, zero_point, scale
    return None


def _constant_only(value, depth: int = 4) -> bool:
    """Whether ``value`` is computed from constants alone (a Constant, or a few Reshape/Convert steps of them)."""
    node = value.get_node()
    if node.get_type_name() == "Constant":
        return True
    if depth == 0 or node.get_type_name() == "Parameter" or node.get_input_size() == 0:
        return False
    return all(_constant_only(node.input_value(i), depth - 1) for i in range(node.get_input_size()))
