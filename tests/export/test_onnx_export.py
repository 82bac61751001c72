import numpy as np
import onnx
import pytest
import torch

from edge_clipguard.contract import INPUT_NAMES, OUTPUT_NAMES
from edge_clipguard.errors import ExportValidationError
from edge_clipguard.export.onnx_export import export_onnx, validate_onnx


@pytest.fixture()
def tiny_onnx(tmp_path, tiny_model):
    return export_onnx(tiny_model, tmp_path / "tiny.onnx")


def test_onnx_runtime_matches_pytorch_within_1e4(tiny_onnx, tiny_model):
    errors = {e.name: e for e in validate_onnx(tiny_onnx, tiny_model, batch_sizes=(1, 3))}
    print({name: f"{e.max_abs:.2e}" for name, e in errors.items()})  # shown with -s / in the log
    assert errors["score"].max_abs <= 1e-4 and errors["boxes"].max_abs <= 1e-4
    assert errors["labels"].max_abs == 0


def test_graph_has_the_contract_names_and_a_dynamic_batch(tiny_onnx):
    graph = onnx.load(str(tiny_onnx)).graph
    assert [i.name for i in graph.input] == list(INPUT_NAMES)
    assert [o.name for o in graph.output] == list(OUTPUT_NAMES)
    assert all(i.type.tensor_type.shape.dim[0].dim_param == "batch" for i in graph.input)
    static = [d.dim_value for d in graph.input[2].type.tensor_type.shape.dim[1:]]
    assert static == [3, 64, 64]


def test_graph_has_a_dynamic_text_axis(tiny_onnx):
    graph = onnx.load(str(tiny_onnx)).graph
    assert [i.type.tensor_type.shape.dim[1].dim_param for i in graph.input[:2]] == ["text_length", "text_length"]


@pytest.mark.parametrize("length", [5, 16])
def test_the_graph_matches_pytorch_at_any_text_length(tiny_onnx, tiny_model, length):
    from edge_clipguard.export.onnx_export import run_onnxruntime, run_torch
    from edge_clipguard.model.clipguard import example_inputs

    feed = dict(zip(INPUT_NAMES, (t.numpy() for t in example_inputs(tiny_model.cfg, 2, seed=4, length=length))))
    got, want = run_onnxruntime(tiny_onnx, feed), run_torch(tiny_model, feed)
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-4)


def test_graph_has_no_data_dependent_ops(tiny_onnx):
    ops = {n.op_type for n in onnx.load(str(tiny_onnx)).graph.node}
    assert {"TopK", "MaxPool", "GatherElements"} <= ops
    assert not ops & {"NonZero", "NonMaxSuppression", "Loop", "If"}


def test_validation_fails_with_a_named_error_when_weights_differ(tiny_onnx, tiny_model):
    with torch.no_grad():
        tiny_model.score_head.mlp[-1].bias.add_(1.0)
    with pytest.raises(ExportValidationError, match=r"disagrees with PyTorch: score max_abs="):
        validate_onnx(tiny_onnx, tiny_model)


def test_exported_file_is_self_contained(tiny_onnx):
    assert not list(tiny_onnx.parent.glob("*.data"))
    assert np.isfinite(onnx.numpy_helper.to_array(onnx.load(str(tiny_onnx)).graph.initializer[0])).all()
