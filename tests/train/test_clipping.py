import math

import pytest
import torch

from edge_clipguard.train.clipping import ClipConfig, GradientClipper, grad_norm


def _groups(text=3.0, image=4.0, fusion=0.0):
    """Three one-parameter groups whose gradients have the given L2 norms."""
    groups = {}
    for name, norm in (("text", text), ("image", image), ("fusion", fusion)):
        p = torch.nn.Parameter(torch.zeros(4))
        p.grad = torch.tensor([norm, 0.0, 0.0, 0.0])
        groups[name] = [p]
    return groups


def test_none_measures_but_never_clips():
    groups = _groups()
    report = GradientClipper(ClipConfig(mode="none"), groups)()
    assert report.pre_norms["total"] == pytest.approx(5.0) and not report.clipped
    assert grad_norm(groups["image"]) == pytest.approx(4.0)


def test_norm_mode_scales_the_global_norm_to_the_limit():
    groups = _groups()
    report = GradientClipper(ClipConfig(mode="norm", max_norm=1.0), groups)()
    assert report.clipped and report.post_norm == pytest.approx(1.0, rel=1e-4)
    assert grad_norm(groups["text"]) / grad_norm(groups["image"]) == pytest.approx(0.75)  # direction kept


def test_per_modality_clips_each_group_on_its_own():
    groups = _groups(text=0.5, image=40.0, fusion=2.0)
    report = GradientClipper(ClipConfig(mode="per-modality", max_norm=1.0), groups)()
    assert grad_norm(groups["text"]) == pytest.approx(0.5)  # under the limit: untouched
    assert grad_norm(groups["image"]) == pytest.approx(1.0, rel=1e-4)
    assert grad_norm(groups["fusion"]) == pytest.approx(1.0, rel=1e-4)
    assert report.pre_norms["image"] == pytest.approx(40.0) and report.clipped


def test_adaptive_threshold_follows_the_running_percentile():
    clipper = GradientClipper(ClipConfig(mode="adaptive", max_norm=100.0, percentile=50.0, min_history=5), {})
    for norm in (1.0, 2.0, 3.0, 4.0, 5.0):
        clipper.groups = _groups(text=norm, image=0.0)
        assert not clipper().clipped  # first min_history steps use max_norm = 100
    assert clipper.threshold() == pytest.approx(3.0)
    clipper.groups = _groups(text=30.0, image=0.0)
    report = clipper()
    assert report.clipped and report.threshold == pytest.approx(3.0)
    assert report.post_norm == pytest.approx(3.0, rel=1e-4)


def test_non_finite_gradients_are_reported_not_clipped():
    groups = _groups(text=float("inf"))
    report = GradientClipper(ClipConfig(mode="norm"), groups)()
    assert not report.finite and math.isinf(report.pre_norms["total"])


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="clip mode must be one of"):
        ClipConfig(mode="sometimes")


def test_adaptive_threshold_is_not_lifted_by_one_early_spike():
    clipper = GradientClipper(ClipConfig(mode="adaptive", max_norm=1000.0, percentile=90.0, min_history=20), {})
    for norm in [5.0] * 10 + [287.0] + [5.0] * 9:
        clipper.groups = _groups(text=norm, image=0.0)
        clipper()
    assert clipper.threshold() <= 10.0
    clipper.groups = _groups(text=139.0, image=0.0)
    assert clipper().clipped
