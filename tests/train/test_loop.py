import torch

from edge_clipguard.data.dataset import ManifestDataset, collate
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.train.loop import TrainConfig, train, warmup_cosine


def test_warmup_then_cosine_to_zero():
    values = [warmup_cosine(s, 4, 20) for s in range(21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4] == 1.0 and abs(values[20]) < 1e-9
    assert all(a >= b for a, b in zip(values[4:], values[5:]))


def test_training_reduces_the_loss_on_a_fixed_batch(scenes_dir, tiny_model, tiny_tokenizer, tiny_cfg):
    samples = read_manifest(scenes_dir / "train.jsonl")[:8]
    batch = collate([ManifestDataset(samples, tiny_tokenizer, tiny_cfg.image_size)[i] for i in range(8)])
    history = train(tiny_model, lambda epoch: [batch], TrainConfig(steps=40, lr=3e-3, warmup_steps=2), progress=False)
    first = sum(h["loss"] for h in history[:3]) / 3
    last = sum(h["loss"] for h in history[-3:]) / 3
    assert last < 0.6 * first
    assert all(torch.isfinite(torch.tensor(h["grad_norm"])) for h in history)


def test_training_is_deterministic_on_cpu(scenes_dir, tiny_cfg, tiny_tokenizer):
    from edge_clipguard.model import build_model

    samples = read_manifest(scenes_dir / "train.jsonl")[:4]
    batch = collate([ManifestDataset(samples, tiny_tokenizer, tiny_cfg.image_size)[i] for i in range(4)])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model(tiny_cfg)
        train(model, lambda epoch: [batch], TrainConfig(steps=3), progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
