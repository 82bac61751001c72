"""The INT8 artifact's Q/DQ graph, checked node by node against the TensorRT rules."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_clipguard.export.qdq_graph import constant_values, qdq_rule_violations


@pytest.fixture()
def int8_graph(tiny_int8_bundle):
    return onnx.load(str(tiny_int8_bundle.bundle / "model.int8.onnx"))


def test_int8_graph_breaks_no_rule(int8_graph):
    assert qdq_rule_violations(int8_graph) == []


def test_int8_graph_uses_opset_13_or_newer(int8_graph):
    assert max(o.version for o in int8_graph.opset_import if o.domain in ("", "ai.onnx")) >= 13


def test_weights_are_stored_as_int8_per_output_channel(int8_graph):
    values = constant_values(int8_graph.graph)
    weight_dq = [n for n in int8_graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in values
                 and "/image_tower/" in n.name]
    assert weight_dq, "the image tower has no quantized weights"
    for node in weight_dq:
        assert values[node.input[0]].dtype == np.int8
        assert next(a.i for a in node.attribute if a.name == "axis") == 0
        assert values[node.input[1]].size == values[node.input[0]].shape[0]


def test_every_zero_point_is_int8_zero(int8_graph):
    values = constant_values(int8_graph.graph)
    for node in int8_graph.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero_point = values[node.input[2]]
            assert zero_point.dtype == np.int8 and not zero_point.any(), node.name


def test_score_head_layernorm_and_softmax_stay_float(int8_graph):
    producers = {o: n for n in int8_graph.graph.node for o in n.output}
    for node in int8_graph.graph.node:
        if "/score_head/" in node.name:
            assert node.op_type not in ("QuantizeLinear", "DequantizeLinear"), node.name
        if node.op_type in ("LayerNormalization", "Softmax", "Sigmoid"):
            assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear" for i in node.input)


def _first(graph, op_type, scope=""):
    return next(n for n in graph.node if n.op_type == op_type and scope in n.name)


def test_checker_flags_an_asymmetric_zero_point(int8_graph):
    node = _first(int8_graph.graph, "QuantizeLinear")
    zero_point = next(i for i in int8_graph.graph.initializer if i.name == node.input[2])
    zero_point.CopyFrom(numpy_helper.from_array(np.array(3, dtype=np.int8), name=node.input[2]))
    assert any("zero point" in p for p in qdq_rule_violations(int8_graph))


def test_checker_flags_a_per_tensor_weight(int8_graph):
    values = constant_values(int8_graph.graph)
    node = next(n for n in int8_graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in values
                and "/image_tower/" in n.name)
    for attr in node.attribute:
        if attr.name == "axis":
            attr.i = 1
    assert any("per output channel" in p for p in qdq_rule_violations(int8_graph))


def _activation_dq(graph):
    values = constant_values(graph)
    return next(n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in values)


def test_checker_flags_activation_quantization_inside_the_score_head(int8_graph):
    node = _activation_dq(int8_graph.graph)
    node.name = "/model/score_head/mlp/injected/DequantizeLinear"
    assert any("float-only scope" in p for p in qdq_rule_violations(int8_graph))


def test_checker_allows_a_weight_only_dequantize_inside_the_score_head(int8_graph):
    values = constant_values(int8_graph.graph)
    node = next(n for n in int8_graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in values)
    node.name = "/model/score_head/mlp/weight/DequantizeLinear"
    assert qdq_rule_violations(int8_graph) == []


def test_checker_flags_an_unquantized_graph(tiny_bundle):
    problems = qdq_rule_violations(onnx.load(str(tiny_bundle / "model.fp32.onnx")))
    assert any("not quantized" in p for p in problems)


def _gather_model(table: np.ndarray, ids: int):
    """A one-node ONNX model: out = table[ids] (Gather on an initializer), opset 17."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"])], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [ids])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [ids, table.shape[1]])],
        [numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, ids: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


def test_large_table_stored_int8_dequantizes_to_within_half_a_step():
    from edge_clipguard.export.qdq_graph import store_large_tables_int8

    table = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    model = _gather_model(table, 3)
    assert store_large_tables_int8(model, min_elements=16) == ["table"]
    ids = np.array([0, 5, 63])
    got = _run(model, ids)
    step = np.abs(table[ids]).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(got - table[ids]) <= step / 2 + 1e-7)


def test_a_table_stored_int8_per_row_breaks_no_rule():
    from edge_clipguard.export.qdq_graph import qdq_rule_violations, store_large_tables_int8

    model = _gather_model(np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32), 2)
    store_large_tables_int8(model, min_elements=16)
    assert qdq_rule_violations(model) == []


def test_checker_flags_a_table_quantized_along_the_wrong_axis():
    from edge_clipguard.export.qdq_graph import qdq_rule_violations, store_large_tables_int8

    model = _gather_model(np.random.default_rng(1).normal(size=(64, 8)).astype(np.float32), 2)
    store_large_tables_int8(model, min_elements=16)
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear")
    next(a for a in dq.attribute if a.name == "axis").i = 1
    assert any("per row (axis 0)" in p for p in qdq_rule_violations(model))


def test_the_torch_reference_table_is_exactly_what_the_int8_graph_gathers(monkeypatch):
    import torch

    import edge_clipguard.export.qdq_graph as qdq_graph
    from edge_clipguard.export.int8 import round_weight_only_tensors

    monkeypatch.setattr(qdq_graph, "LARGE_TABLE_ELEMENTS", 16)
    torch.manual_seed(0)
    embedding = torch.nn.Sequential(torch.nn.Embedding(64, 8))
    model = _gather_model(embedding[0].weight.detach().numpy().copy(), 64)
    qdq_graph.store_large_tables_int8(model, min_elements=16)
    assert round_weight_only_tensors(embedding) == ["0.weight"]
    np.testing.assert_array_equal(_run(model, np.arange(64)), embedding[0].weight.detach().numpy())


def _constant_plus_input_model(codes: np.ndarray):
    """out = x + codes, with codes in a Constant node (as PyTorch exports a fixed buffer), opset 17."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["codes"], value=numpy_helper.from_array(codes)),
         helper.make_node("Add", ["x", "codes"], ["out"], name="/model/add")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(codes.shape))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(codes.shape))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_large_constant_that_is_not_a_weight_is_stored_float16():
    import onnxruntime as ort

    from edge_clipguard.export.qdq_graph import shrink_large_constants

    codes = np.sin(np.arange(4 * 64, dtype=np.float32)).reshape(1, 4, 64)
    model = _constant_plus_input_model(codes)
    assert shrink_large_constants(model, min_elements=16) == {"int8": [], "float16": ["codes"]}
    assert not any(n.op_type == "Constant" for n in model.graph.node)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": np.zeros_like(codes)})[0]
    np.testing.assert_array_equal(got, codes.astype(np.float16).astype(np.float32))


def test_a_large_gather_table_is_stored_int8_by_the_shrink_pass():
    from edge_clipguard.export.qdq_graph import shrink_large_constants

    model = _gather_model(np.random.default_rng(3).normal(size=(64, 8)).astype(np.float32), 2)
    assert shrink_large_constants(model, min_elements=16) == {"int8": ["table"], "float16": []}
    assert qdq_rule_violations(model) == []


def test_the_torch_reference_rounds_buffers_and_float_head_weights_but_not_quantized_layers(monkeypatch):
    import torch

    import edge_clipguard.export.qdq_graph as qdq_graph
    from edge_clipguard.export.int8 import round_weight_only_tensors

    monkeypatch.setattr(qdq_graph, "LARGE_TABLE_ELEMENTS", 16)
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.score_head = torch.nn.Linear(8, 8)  # a float scope: its weight is stored weight-only
    model.fusion = torch.nn.Linear(8, 8)  # quantized with its own Q/DQ: left to ModelOpt
    model.register_buffer("pos", torch.randn(1, 4, 8), persistent=False)
    fusion_before = model.fusion.weight.detach().clone()
    pos_before = model.pos.clone()
    assert sorted(round_weight_only_tensors(model)) == ["pos", "score_head.weight"]
    torch.testing.assert_close(model.fusion.weight.detach(), fusion_before, rtol=0, atol=0)
    torch.testing.assert_close(model.pos, pos_before.half().float(), rtol=0, atol=0)
    step = model.score_head.weight.detach().abs().amax(dim=1, keepdim=True) / 127
    weight_steps = model.score_head.weight.detach() / step
    assert torch.allclose(weight_steps, torch.round(weight_steps), atol=1e-3)
