import pytest


@pytest.fixture()
def tiny_sets(scenes_dir, vader_dir, tiny_cfg, tiny_tokenizer):
    """8 scenes + 4 text-only VADER rows to train on; 4 scenes to validate on."""
    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.data.manifest import read_manifest
    from edge_clipguard.data.vader import load_vader

    scenes = read_manifest(scenes_dir / "train.jsonl")
    texts = load_vader(vader_dir, split="train")[:4]
    train = ManifestDataset(scenes[:8] + texts, tiny_tokenizer, tiny_cfg.image_size)
    val = ManifestDataset(read_manifest(scenes_dir / "test.jsonl")[:4], tiny_tokenizer, tiny_cfg.image_size)
    return train, val


@pytest.fixture()
def make_trainer(tiny_cfg, tiny_tokenizer, tiny_sets, tmp_path):
    import torch

    from edge_clipguard.model import build_model
    from edge_clipguard.train.trainer import Trainer, TrainerConfig

    def make(out=None, **overrides):
        torch.manual_seed(0)
        model = build_model(tiny_cfg)
        cfg = TrainerConfig(**{"epochs": 5, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "progress": False,
                               **overrides})
        return Trainer(model, tiny_cfg, tiny_tokenizer.to_str(), *tiny_sets, cfg, out or tmp_path / "run")

    return make
