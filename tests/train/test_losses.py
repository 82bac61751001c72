"""Loss masking: rows without a score train the box heads only, rows without an image the score head only."""

import torch
import torch.nn.functional as F

from edge_clipguard.model.clipguard import BOX_STRIDE
from edge_clipguard.train.losses import compute_losses
from edge_clipguard.train.targets import box_targets


def _forward(model, cfg, batch=3):
    torch.manual_seed(1)
    ids = torch.randint(1000, 2000, (batch, cfg.text.max_length))
    raw = model(ids, torch.ones_like(ids), torch.randn(batch, 3, cfg.image_size, cfg.image_size))
    grid = raw["heatmap"].shape[-1]
    boxes = [torch.tensor([[8.0, 8.0, 40.0, 40.0]])] * batch
    targets = box_targets(boxes, [torch.tensor([1])] * batch, cfg.num_classes, grid, BOX_STRIDE)
    return raw, targets


def test_batch_without_scores_gives_a_zero_score_term_with_a_gradient_path(tiny_model, tiny_cfg):
    raw, targets = _forward(tiny_model.train(), tiny_cfg)
    terms = compute_losses(raw, targets, torch.zeros(3), torch.ones(3, dtype=torch.bool),
                           has_score=torch.zeros(3, dtype=torch.bool))
    assert float(terms["score"].detach()) == 0.0 and terms["score"].requires_grad
    terms["score"].backward()
    head = [p.grad for p in tiny_model.score_head.parameters()]
    assert all(g is not None and float(g.abs().sum()) == 0.0 for g in head)


def test_score_term_uses_only_the_rows_that_have_a_score(tiny_model, tiny_cfg):
    raw, targets = _forward(tiny_model, tiny_cfg)
    score = torch.tensor([4.0, 1000.0, 6.0])  # the middle row has no score: its target must not count
    terms = compute_losses(raw, targets, score, torch.ones(3, dtype=torch.bool),
                           has_score=torch.tensor([True, False, True]))
    expected = F.smooth_l1_loss(raw["score"][[0, 2]], score[[0, 2]], beta=1.0)
    assert torch.allclose(terms["score"], expected)
