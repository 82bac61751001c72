"""OpenVINO keeps an INT8 file's int8 lookup table int8 (gather the rows, then dequantize them)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")
onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge_clipguard.runtime.backends.base import ModelFile  # noqa: E402
from edge_clipguard.runtime.backends.openvino_runner import OpenVinoConfig, OpenVinoRunner  # noqa: E402

ROWS, WIDTH = 4096, 64  # a 1 MB fp32 table, 256 KB in int8
RNG = np.random.default_rng(0)
TABLE = RNG.integers(-127, 128, (ROWS, WIDTH), dtype=np.int8)
ROW_SCALES = RNG.uniform(0.001, 0.02, ROWS).astype(np.float32)
WEIGHT = RNG.integers(-127, 128, (WIDTH, WIDTH), dtype=np.int8)


def _table_graph(scales: np.ndarray = ROW_SCALES, axis: int = 0) -> bytes:
    """ids -> DequantizeLinear(int8 table, ``scales`` along ``axis``) -> Gather -> Q/DQ -> MatMul(int8 weight): the
    export's table pattern (per-row scales) in a graph with quantized activations, where OpenVINO's low-precision
    pipeline runs."""
    init = [numpy_helper.from_array(TABLE, "table_q"), numpy_helper.from_array(scales, "table_s"),
            numpy_helper.from_array(np.zeros(scales.shape, np.int8), "table_z"),
            numpy_helper.from_array(np.array(0.05, np.float32), "act_s"),
            numpy_helper.from_array(np.array(0, np.int8), "act_z"),
            numpy_helper.from_array(WEIGHT, "w_q"), numpy_helper.from_array(np.full(WIDTH, 0.01, np.float32), "w_s"),
            numpy_helper.from_array(np.zeros(WIDTH, np.int8), "w_z")]
    nodes = [
        helper.make_node("DequantizeLinear", ["table_q", "table_s", "table_z"], ["table"], axis=axis),
        helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0),
        helper.make_node("QuantizeLinear", ["rows", "act_s", "act_z"], ["rows_q"]),
        helper.make_node("DequantizeLinear", ["rows_q", "act_s", "act_z"], ["rows_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=1),
        helper.make_node("MatMul", ["rows_dq", "w"], ["out"]),
        helper.make_node("Identity", ["rows"], ["embedded"]),
    ]
    graph = helper.make_graph(nodes, "table", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, WIDTH]),
                               helper.make_tensor_value_info("embedded", TensorProto.FLOAT, [1, 8, WIDTH])],
                              init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _runner(graph: bytes | None = None) -> OpenVinoRunner:
    from edge_clipguard.bundle import TensorSpec

    outputs = (TensorSpec("out", "float32", (1, 8, WIDTH)), TensorSpec("embedded", "float32", (1, 8, WIDTH)))
    inputs = (TensorSpec("ids", "int64", (1, 8)),)
    return OpenVinoRunner(ModelFile("table.onnx", graph or _table_graph()), inputs, outputs,
                          OpenVinoConfig(threads=1)).activate()


def test_the_gathered_rows_equal_the_dequantized_table_rows():
    ids = np.array([[0, 5, 17, 4095, 5, 1000, 2, 3]], np.int64)
    with _runner() as runner:
        embedded = runner.infer({"ids": ids})["embedded"]
    np.testing.assert_array_equal(embedded[0], TABLE[ids[0]].astype(np.float32) * ROW_SCALES[ids[0], None])


def test_the_compiled_model_holds_the_table_in_int8():
    with _runner() as runner:
        blob = runner._compile(None).export_model().getvalue()
    assert len(blob) < TABLE.size * 4 // 2  # the table in fp32 alone is 1 MB, its int8 rows 256 KB


def test_a_table_with_one_scale_for_all_rows_is_gathered_first_too():
    ids = np.array([[0, 5, 17, 4095, 5, 1000, 2, 3]], np.int64)
    with _runner(_table_graph(np.array(0.01, np.float32))) as runner:
        embedded = runner.infer({"ids": ids})["embedded"]
        blob = runner._compile(None).export_model().getvalue()
    np.testing.assert_allclose(embedded[0], TABLE[ids[0]].astype(np.float32) * np.float32(0.01), rtol=1e-6)
    assert len(blob) < TABLE.size * 4 // 2


def test_a_table_scaled_per_column_is_left_as_written():
    import openvino as ov

    from edge_clipguard.runtime.backends.openvino_tables import gather_before_dequantize

    model = ov.Core().read_model(_table_graph(np.full(WIDTH, 0.01, np.float32), axis=1), b"")
    assert gather_before_dequantize(model) == 0
