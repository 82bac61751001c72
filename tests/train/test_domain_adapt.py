"""Domain adaptation pieces (train/domain_adapt.py) and `train --domain-adapt` end to end."""

import json

import torch

from edge_clipguard.cli import main


def test_gradient_reversal_flips_and_scales_the_gradient():
    from edge_clipguard.train.domain_adapt import dann_coefficient, grad_reverse

    x = torch.randn(4, 3, requires_grad=True)
    out = grad_reverse(x, 0.3)
    assert torch.equal(out, x)
    (out * 2.0).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.6))
    assert dann_coefficient(0.0) == 0.0 and 0.99 < dann_coefficient(1.0) < 1.0


def test_mmd_is_zero_for_identical_batches_and_positive_for_shifted_ones():
    from edge_clipguard.train.domain_adapt import gaussian_mmd

    a = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    b = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    assert abs(float(gaussian_mmd(a, a))) < 1e-6
    same_law, shifted = float(gaussian_mmd(a, b)), float(gaussian_mmd(a, b + 2.0))
    assert shifted > 0 and shifted > 4 * same_law  # the biased estimate of two draws of one law is small, not 0


def test_train_with_dann_on_unlabelled_target_rows_runs(scenes_dir, tmp_path, capsys):
    target = tmp_path / "target.jsonl"  # text-only rows without a score: unlabelled
    target.write_text("".join(json.dumps({"image": None, "text": f"target sentence {i}", "boxes": [], "labels": []})
                              + "\n" for i in range(8)))
    code = main(["train", "--config", "tiny", "--domain-adapt", "dann", "--target-data", str(target), "--data",
                 str(scenes_dir / "train.jsonl"), "--val-data", str(scenes_dir / "test.jsonl"), "--out",
                 str(tmp_path / "run"), "--batch-size", "4", "--max-steps", "2", "--warmup", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("domain" in r for r in rows)
