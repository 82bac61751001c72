"""Compacting an ONNX file: smaller, same results, same inputs, outputs and node names."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edge_clipguard.export.graph_compact import compact_graph, compact_tensor_names, constants_to_initializers


def _model():
    """y = (x * a) + (x * b), a and b in two Constant nodes, long PyTorch-style tensor names."""
    a = numpy_helper.from_array(np.arange(8, dtype=np.float32))
    nodes = [
        helper.make_node("Constant", [], ["/model/left/Constant_output_0"], value=a, name="/model/left/Constant"),
        helper.make_node("Constant", [], ["/model/right/Constant_output_0"], value=a, name="/model/right/Constant"),
        helper.make_node("Mul", ["x", "/model/left/Constant_output_0"], ["/model/left/Mul_output_0"],
                         name="/model/left/Mul"),
        helper.make_node("Mul", ["x", "/model/right/Constant_output_0"], ["/model/right/Mul_output_0"],
                         name="/model/right/Mul"),
        helper.make_node("Add", ["/model/left/Mul_output_0", "/model/right/Mul_output_0"], ["y"], name="/model/Add"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.linspace(-1, 1, 8, dtype=np.float32)})[0]


def test_compacting_keeps_the_results():
    model = _model()
    before = _run(model)
    compact_graph(model)
    onnx.checker.check_model(model)
    np.testing.assert_array_equal(_run(model), before)


def test_constant_nodes_become_initializers():
    model = _model()
    assert constants_to_initializers(model.graph) == 2
    assert [n.op_type for n in model.graph.node] == ["Mul", "Mul", "Add"]
    assert len(model.graph.initializer) == 2


def test_tensor_names_shrink_but_inputs_outputs_and_node_names_stay():
    model = _model()
    node_names = [n.name for n in model.graph.node]
    assert compact_tensor_names(model.graph) == 4
    assert [n.name for n in model.graph.node] == node_names
    assert model.graph.node[-1].output[0] == "y" and model.graph.node[2].input[0] == "x"
    assert max(len(name) for n in model.graph.node for name in n.output) == 1


def test_compacting_makes_the_file_smaller():
    model = _model()
    before = model.ByteSize()
    compact_graph(model)
    assert model.ByteSize() < before
