"""The evaluation predictor: a cut bundle runs as its parts unless asked to run its whole graph."""

from __future__ import annotations

from edge_clipguard.runtime.text_features import SplitRunner
from edge_clipguard.train.bundle_eval import open_predictor


def test_open_predictor_runs_a_cut_bundle_as_its_parts(tiny_bundle):
    with open_predictor(tiny_bundle, "onnxruntime", threads=1) as predictor:
        assert isinstance(predictor.runner, SplitRunner)


def test_open_predictor_whole_graph_runs_the_uncut_graph(tiny_bundle):
    with open_predictor(tiny_bundle, "onnxruntime", threads=1, whole_graph=True) as predictor:
        assert not isinstance(predictor.runner, SplitRunner)
