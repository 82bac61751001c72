"""The INT8 parity check's limits: an INT8 graph may sit as far from the fake-quant reference as quantization
itself moved that reference from fp32, and no further (``export.int8.check_against_torch``)."""

from __future__ import annotations

import copy

import pytest
import torch

from edge_clipguard.errors import ExportValidationError
from edge_clipguard.export.int8 import INT8_CONFIDENCE_ATOL, check_against_torch
from edge_clipguard.export.onnx_export import export_onnx

LIMITS = {"score": 0.5, "score_mean": 0.1, "confidences": INT8_CONFIDENCE_ATOL}


@pytest.fixture(scope="module")
def models_and_graph(tiny_checkpoint, tmp_path_factory):
    """(fp32 model, a 'reference' whose confidences sit ~0.1 from it, the fp32 model's ONNX graph)."""
    from edge_clipguard.train.checkpoint import load_checkpoint, restore_model

    fp32, _ = restore_model(load_checkpoint(tiny_checkpoint))
    with torch.no_grad():  # make every heat-map logit clearly positive, then move the reference's by +0.5
        fp32.box_head.heatmap.bias.fill_(1.0)
        moved = copy.deepcopy(fp32)
        moved.box_head.heatmap.bias.add_(0.5)
    graph = export_onnx(fp32, tmp_path_factory.mktemp("limits") / "fp32.onnx")
    return fp32, moved, graph


def test_a_graph_off_the_reference_by_more_than_the_fixed_limit_fails(models_and_graph):
    fp32, moved, graph = models_and_graph
    with pytest.raises(ExportValidationError, match="confidences"):
        check_against_torch(graph, moved, LIMITS)


def test_the_confidence_limit_widens_to_how_far_quantization_moved_the_reference(models_and_graph):
    fp32, moved, graph = models_and_graph
    worst = check_against_torch(graph, moved, LIMITS, fp32_model=fp32)
    assert worst["confidences"]["max_abs"] > INT8_CONFIDENCE_ATOL
    # the graph is the fp32 model, so it sits from the reference just where quantization put the reference
    assert worst["confidences"]["reference_vs_fp32"]["max_abs"] == pytest.approx(worst["confidences"]["max_abs"],
                                                                                  abs=0.01)
