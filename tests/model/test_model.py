import torch

from edge_clipguard.model.clipguard import DecodedClipGuard, example_inputs
from edge_clipguard.model.decode import decode_boxes


def test_decoded_outputs_have_fixed_shapes_and_ranges(tiny_model, tiny_cfg):
    with torch.no_grad():
        score, boxes, confidences, labels = DecodedClipGuard(tiny_model)(*example_inputs(tiny_cfg, batch=3))
    k = tiny_cfg.heads.top_k
    assert score.shape == (3,) and boxes.shape == (3, k, 4) and confidences.shape == (3, k) and labels.shape == (3, k)
    assert ((score >= 0) & (score <= 10)).all()
    assert labels.dtype == torch.int64 and ((labels >= 0) & (labels < tiny_cfg.num_classes)).all()
    assert ((confidences >= 0) & (confidences <= 1)).all()


def test_padding_tokens_do_not_change_the_outputs(tiny_model, tiny_cfg):
    ids, mask, pixels = example_inputs(tiny_cfg, batch=1)
    mask[0, 6:] = 0
    ids = ids * mask
    other_ids = ids.clone()
    other_ids[0, 6:] = 777  # garbage where the mask says padding
    with torch.no_grad():
        a = tiny_model(ids, mask, pixels)
        b = tiny_model(other_ids, mask, pixels)
    assert torch.allclose(a["score"], b["score"], atol=1e-5)
    assert torch.allclose(a["heatmap"], b["heatmap"], atol=1e-5)


def test_the_text_changes_the_box_heatmap(tiny_model, tiny_cfg):
    """Fusion is real: image tokens attend to the text, so different text -> different heatmap."""
    ids, mask, pixels = example_inputs(tiny_cfg, batch=1)
    with torch.no_grad():
        a = tiny_model(ids, mask, pixels)["heatmap"]
        b = tiny_model(torch.roll(ids, 1, dims=1), mask, pixels)["heatmap"]
    assert (a - b).abs().max() > 1e-4


def test_decode_finds_a_planted_peak_with_its_box():
    logits = torch.full((1, 3, 8, 8), -10.0)
    logits[0, 2, 5, 3] = 5.0
    log_size = torch.zeros(1, 2, 8, 8)
    log_size[0, :, 5, 3] = torch.log(torch.tensor([2.0, 4.0]))
    offset = torch.full((1, 2, 8, 8), 0.5)
    boxes, confidences, labels = decode_boxes(logits, log_size, offset, stride=8, top_k=4)
    assert labels[0, 0] == 2
    assert torch.allclose(confidences[0, 0], torch.sigmoid(torch.tensor(5.0)))
    # centre (3.5, 5.5) cells * 8 = (28, 44) px; size (2, 4) cells = (16, 32) px
    assert torch.allclose(boxes[0, 0], torch.tensor([20.0, 28.0, 36.0, 60.0]))


def test_decode_keeps_only_local_maxima():
    logits = torch.full((1, 1, 6, 6), -10.0)
    logits[0, 0, 2, 2], logits[0, 0, 2, 3] = 4.0, 3.0  # neighbour of a stronger peak: suppressed
    _, confidences, _ = decode_boxes(logits, torch.zeros(1, 2, 6, 6), torch.zeros(1, 2, 6, 6), 8, top_k=2)
    assert confidences[0, 1] < 1e-3


def test_a_class_the_text_does_not_ask_for_is_suppressed_in_the_heatmap(tiny_model, tiny_cfg):
    """The refer head's log-sigmoid is added to the heatmap: pushing one class's refer logit down
    lowers that class's heatmap everywhere by exactly the change in its log-sigmoid."""
    inputs = example_inputs(tiny_cfg, batch=1)
    with torch.no_grad():
        before = tiny_model(*inputs)
        tiny_model.refer_head.linear.bias[2] -= 20.0
        after = tiny_model(*inputs)
    drop = before["heatmap"] - after["heatmap"]
    expected = torch.nn.functional.logsigmoid(before["refer_logits"][0, 2]) - torch.nn.functional.logsigmoid(
        after["refer_logits"][0, 2])
    assert torch.allclose(drop[0, 2], expected.expand_as(drop[0, 2]), atol=1e-4) and expected > 15
    assert torch.allclose(drop[0, [0, 1, 3]], torch.zeros_like(drop[0, [0, 1, 3]]), atol=1e-5)


def test_fusing_every_level_keeps_the_output_shapes(tiny_cfg):
    """``fusion.image_strides`` only changes which tokens enter the fusion, never the outputs."""
    import dataclasses

    from edge_clipguard.model import build_model

    shapes = []
    for strides in ((8, 16, 32), (32,)):
        cfg = dataclasses.replace(tiny_cfg, fusion=dataclasses.replace(tiny_cfg.fusion, image_strides=strides))
        with torch.no_grad():
            raw = build_model(cfg).eval()(*example_inputs(cfg, batch=2))
        shapes.append({k: tuple(v.shape) for k, v in raw.items()})
    assert shapes[0] == shapes[1]
