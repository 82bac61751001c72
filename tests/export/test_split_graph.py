"""Export cuts every ONNX artifact in two at the text features, and the parts compute what the whole does."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_clipguard.bundle import ArtifactParts, read_manifest
from edge_clipguard.contract import FUSION_PART_INPUTS, TEXT_FEATURES, TEXT_PART_INPUTS
from edge_clipguard.export.onnx_export import random_feeds
from edge_clipguard.export.split_graph import NotSplittable, check_parts, part_names, split_model


def test_part_names_follow_the_whole_graphs_name():
    assert part_names("model.int8-cpu.onnx") == ArtifactParts("model.int8-cpu.text.onnx", "model.int8-cpu.fusion.onnx")


def test_export_cuts_every_onnx_artifact_in_two(tiny_int8_bundle):
    manifest = read_manifest(tiny_int8_bundle.bundle)
    assert {a.file for a in manifest.artifacts} == {"model.fp32.onnx", "model.fp16.onnx", "model.int8.onnx",
                                                     "model.int8-cpu.onnx"}
    for art in manifest.artifacts:
        assert art.parts == part_names(art.file) and set(art.member_files()) <= set(manifest.files)
    assert manifest.text_features.shape == ("batch", "text_length", 32)


def test_the_parts_have_the_contracts_inputs_and_outputs(tiny_int8_bundle):
    for name in ("model.int8.text.onnx", "model.int8.fusion.onnx", "model.fp16.text.onnx"):
        graph = onnx.load(str(tiny_int8_bundle.bundle / name)).graph
        inputs = [i.name for i in graph.input]
        assert inputs == list(TEXT_PART_INPUTS if ".text." in name else FUSION_PART_INPUTS)
        if ".text." in name:
            assert [o.name for o in graph.output] == [TEXT_FEATURES]
            assert graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT  # fp16's too


@pytest.mark.parametrize("file", ["model.fp32.onnx", "model.int8.onnx", "model.fp16.onnx", "model.int8-cpu.onnx"])
def test_parts_run_in_turn_give_the_whole_graphs_scores(tiny_int8_bundle, tiny_cfg, file):
    feeds = random_feeds(tiny_cfg, (1, 2), seed=5)
    assert check_parts(tiny_int8_bundle.bundle, file, part_names(file), feeds, score_atol=1e-3) <= 1e-5


def test_a_graph_without_a_text_projection_is_not_splittable():
    node = helper.make_node("Identity", ["input_ids"], ["score"], name="/model/other/Identity")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 4])],
                              [helper.make_tensor_value_info("score", TensorProto.INT64, [1, 4])])
    with pytest.raises(NotSplittable, match="text_proj"):
        split_model(helper.make_model(graph))


def test_no_parts_exports_whole_graphs_only_and_the_runtime_runs_them(tiny_checkpoint, tmp_path):
    from edge_clipguard.cli import main
    from edge_clipguard.runtime import Predictor
    from edge_clipguard.runtime.text_features import SplitRunner

    out = tmp_path / "whole"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--no-parts", "--engine", "never"]) == 0
    manifest = read_manifest(out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.fp32.onnx", "tokenizer.json"]
    assert manifest.text_features is None and all(a.parts is None for a in manifest.artifacts)
    with Predictor.load(out, backend="onnxruntime", device="cpu", threads=1) as pred:
        assert not isinstance(pred.runner, SplitRunner)
        assert 0.0 <= pred.predict("a star", np.zeros((32, 48, 3), np.uint8)).score <= 10.0
