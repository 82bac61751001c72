"""The INT8 graph of a model trained with quantized attention matmuls: Q/DQ right before both attention MatMuls,
within the TensorRT rules, and ONNX Runtime agreeing with the PyTorch fake-quant model."""

import re

import numpy as np
import onnx
import pytest
import torch

from edge_clipguard.model.clipguard import example_inputs


@pytest.fixture(scope="module")
def attention_int8(tiny_cfg, tmp_path_factory):
    from edge_clipguard.export.int8 import write_qdq_onnx
    from edge_clipguard.model import build_model
    from edge_clipguard.train.quantize import quantize_int8

    torch.manual_seed(0)
    model = quantize_int8(build_model(tiny_cfg).eval(), lambda m: m(*example_inputs(tiny_cfg, batch=2, seed=0)),
                          attention_matmuls=True)
    path = tmp_path_factory.mktemp("attention") / "model.int8.onnx"
    write_qdq_onnx(model, path, opset=17)
    return model, path


def _attention_matmuls(graph):
    """The MatMuls of the attention core itself (q·kᵀ, p·v), not the projections' (named ``.../q_proj/MatMul``)."""
    producers = {o: n for n in graph.node for o in n.output}
    core = re.compile(r"/(image_from_text|text_from_image)/MatMul(_\d+)?$")
    return [n for n in graph.node if n.op_type == "MatMul" and core.search(n.name)], producers


def test_both_inputs_of_every_attention_matmul_come_from_a_dequantize(attention_int8, tiny_cfg):
    graph = onnx.load(str(attention_int8[1])).graph
    matmuls, producers = _attention_matmuls(graph)
    assert len(matmuls) == 2 * 2 * tiny_cfg.fusion.num_layers  # q·kᵀ and p·v, both directions, every layer
    for node in matmuls:
        assert [producers[i].op_type for i in node.input] == ["DequantizeLinear", "DequantizeLinear"], node.name


def test_attention_qdq_graph_breaks_no_rule(attention_int8):
    from edge_clipguard.export.qdq_graph import qdq_rule_violations

    assert qdq_rule_violations(onnx.load(str(attention_int8[1]))) == []


def test_onnxruntime_agrees_with_the_fake_quant_model(attention_int8, tiny_cfg):
    import onnxruntime as ort

    model, path = attention_int8
    input_ids, attention_mask, pixel_values = example_inputs(tiny_cfg, batch=2, seed=11)
    with torch.no_grad():
        expected = model(input_ids, attention_mask, pixel_values)["score"].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["score"], {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
                                  "pixel_values": pixel_values.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=0.05)
