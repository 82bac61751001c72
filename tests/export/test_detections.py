"""Export's parity check compares detections order-independently, yet still catches a wrong graph."""

import numpy as np
import pytest
import torch

from edge_clipguard.export.detections import compare_outputs
from edge_clipguard.export.onnx_export import export_onnx, run_torch, validate_onnx
from edge_clipguard.model.decode import decode_boxes


def _planted_tie_outputs(top_k=4, extra=()):
    """Reference outputs of a 1-class 6x6 heat map whose K-th and (K+1)-th peaks tie exactly; ``extra``:
    more (logit, (y, x)) cells. The dense keys are every cell, peak or not, as ``run_torch`` gives them."""
    heat = torch.full((1, 1, 6, 6), -9.0)
    cells = ((3.0, (0, 0)), (2.0, (0, 3)), (1.0, (3, 0)), (0.5, (3, 3)), (0.5, (5, 5)), *extra)
    for value, (y, x) in cells:
        heat[0, 0, y, x] = value
    log_size = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    offset = torch.rand(1, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    boxes, conf, labels = (t.numpy() for t in decode_boxes(heat, log_size, offset, 8, top_k))
    dense = (t.numpy() for t in decode_boxes(heat, log_size, offset, 8, 36, peaks_only=False))
    expected = {"score": np.zeros(1, np.float32), "boxes": boxes, "confidences": conf, "labels": labels,
                **dict(zip(("dense_boxes", "dense_confidences", "dense_labels"), dense))}
    return expected


def _other_runtime(expected):
    """What a runtime that breaks the tie the other way returns: the left-out tied cell in the last
    slot, and the slots in reverse order."""
    dense_conf = expected["dense_confidences"][0]
    last = expected["confidences"][0, -1]
    chosen = {tuple(b) for b in expected["boxes"][0]}
    dense_boxes = expected["dense_boxes"][0]
    other = next(i for i, c in enumerate(dense_conf) if c == last and tuple(dense_boxes[i]) not in chosen)
    boxes, conf = expected["boxes"].copy(), expected["confidences"].copy()
    boxes[0, -1], conf[0, -1] = dense_boxes[other], dense_conf[other]
    return {"score": expected["score"], "boxes": boxes[:, ::-1], "confidences": conf[:, ::-1],
            "labels": expected["labels"][:, ::-1]}


def test_a_tied_cell_in_another_slot_order_is_no_error():
    expected = _planted_tie_outputs()
    actual = _other_runtime(expected)
    assert np.abs(actual["boxes"][0, 0] - expected["boxes"][0, -1]).max() > 1  # slot by slot they differ
    errors = {e.name: e.max_abs for e in compare_outputs(expected, actual, conf_tol=1e-4)}
    assert errors == {"score": 0.0, "boxes": 0.0, "confidences": 0.0, "labels": 0.0}


def _cell(expected, confidence):
    """Index of the dense cell with this confidence."""
    return int(np.flatnonzero(np.isclose(expected["dense_confidences"][0], confidence, rtol=0, atol=1e-7))[0])


def test_a_near_tied_neighbour_returned_instead_of_the_reference_peak_is_no_error():
    # INT8 noise: the cell 0.002 below the 4th peak, next to it, becomes the peak in its place.
    expected = _planted_tie_outputs(extra=((0.49, (3, 4)),))
    actual = {k: v.copy() for k, v in expected.items() if k in ("score", "boxes", "confidences", "labels")}
    slot = int(np.flatnonzero(np.isclose(actual["confidences"][0], torch.sigmoid(torch.tensor(0.5)).item()))[0])
    neighbour = _cell(expected, torch.sigmoid(torch.tensor(0.49)).item())
    actual["boxes"][0, slot] = expected["dense_boxes"][0, neighbour]
    actual["confidences"][0, slot] = expected["dense_confidences"][0, neighbour]
    errors = {e.name: e.max_abs for e in compare_outputs(expected, actual, conf_tol=0.01)}
    assert errors == {"score": 0.0, "boxes": 0.0, "confidences": 0.0, "labels": 0.0}


def test_a_strong_reference_peak_the_runtime_lost_is_a_confidence_error():
    expected = _planted_tie_outputs()
    actual = {k: v.copy() for k, v in expected.items() if k in ("score", "boxes", "confidences", "labels")}
    background = _cell(expected, torch.sigmoid(torch.tensor(-9.0)).item())
    actual["boxes"][0, 1] = expected["dense_boxes"][0, background]  # the 0.88 peak replaced by a 0.0001 cell
    actual["confidences"][0, 1] = expected["dense_confidences"][0, background]
    errors = {e.name: e.max_abs for e in compare_outputs(expected, actual, conf_tol=0.01)}
    assert errors["boxes"] == 0.0 and errors["confidences"] > 0.1


def test_a_box_no_reference_cell_explains_is_counted():
    expected = _planted_tie_outputs()
    actual = _other_runtime(expected)
    actual["boxes"] = actual["boxes"] + np.array([0.0, 0.0, 0.0, 5.0], np.float32)
    assert {e.name: e.max_abs for e in compare_outputs(expected, actual, 1e-4)}["boxes"] == pytest.approx(5.0)


def test_a_nan_confidence_is_an_error_not_a_pass():
    expected = _planted_tie_outputs()
    actual = {**expected, "confidences": np.full_like(expected["confidences"], np.nan)}
    errors = {e.name: e.max_abs for e in compare_outputs(expected, actual, 1e-4)}
    assert errors["confidences"] == np.inf and errors["labels"] == 4


def test_export_of_a_model_with_a_flat_heatmap_plateau_validates(tmp_path, tiny_model):
    """Dead ReLUs in the box trunk (as after a few steps of training) give every cell the same heat:
    every top-K slot is a tie, and ONNX Runtime fills them with other cells than PyTorch."""
    with torch.no_grad():
        tiny_model.box_head.trunk[2].bias.fill_(-100.0)
    path = export_onnx(tiny_model, tmp_path / "tied.onnx")
    errors = {e.name: e.max_abs for e in validate_onnx(path, tiny_model)}
    assert errors["boxes"] <= 1e-4 and errors["labels"] == 0 and errors["confidences"] <= 1e-4


def test_the_plateau_model_ties_every_top_k_slot(tiny_model):
    from edge_clipguard.export.onnx_export import random_feeds

    with torch.no_grad():
        tiny_model.box_head.trunk[2].bias.fill_(-100.0)
    conf = run_torch(tiny_model, random_feeds(tiny_model.cfg, (2,), seed=0)[0])["confidences"]
    assert (conf == conf[:, :1]).all()


def _swap_axes(boxes):
    return boxes[..., [1, 0, 3, 2]]


def _lose_stride(boxes):
    return boxes / 8


@pytest.mark.parametrize("bug", [_swap_axes, _lose_stride], ids=["wrong-axis", "lost-scale"])
def test_validation_fails_when_the_exported_decode_is_wrong(tmp_path, tiny_model, monkeypatch, bug):
    from edge_clipguard.errors import ExportValidationError
    from edge_clipguard.model import clipguard

    right = clipguard.decode_boxes
    monkeypatch.setattr(clipguard, "decode_boxes", lambda *a: (bug(right(*a)[0]), *right(*a)[1:]))
    path = export_onnx(tiny_model, tmp_path / "bug.onnx")
    monkeypatch.setattr(clipguard, "decode_boxes", right)
    with pytest.raises(ExportValidationError, match=r"disagrees with PyTorch: boxes max_abs="):
        validate_onnx(path, tiny_model)
