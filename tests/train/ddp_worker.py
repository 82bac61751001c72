"""One rank of the DDP test: train the ``tiny`` model for a few steps under torchrun (gloo, CPU).

Run by tests/train/test_distributed.py through ``python -m torch.distributed.run``. Each rank
starts from *different* random weights (seeded by its rank) so the test also sees DDP's initial
broadcast from rank 0, trains on its own shard of the manifest, and saves its final parameters
(and rank 0 its starting ones) to ``--out`` for the test to compare.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edge_clipguard.config import load_config
from edge_clipguard.data.dataset import ManifestDataset
from edge_clipguard.data.manifest import read_manifest
from edge_clipguard.model import build_model
from edge_clipguard.text.tokenizer import default_tokenizer
from edge_clipguard.train.distributed import init_from_env, shutdown
from edge_clipguard.train.trainer import Trainer, TrainerConfig


def parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="training manifest")
    parser.add_argument("--out", required=True, help="folder for rank<N>.pt and start.pt")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # two ranks share two cores
    dist = init_from_env("cpu")
    try:
        cfg = load_config("tiny")
        tokenizer = default_tokenizer(cfg.text.max_length)
        samples = read_manifest(args.data, cfg.num_classes)
        torch.manual_seed(1000 + dist.rank)
        model = build_model(cfg)
        out = Path(args.out)
        if dist.rank == 0:
            torch.save(parameters(model), out / "start.pt")
        train_set = ManifestDataset(samples, tokenizer, cfg.image_size)
        val_set = ManifestDataset(samples[:2], tokenizer, cfg.image_size)
        trainer_cfg = TrainerConfig(epochs=100, max_steps=args.steps, batch_size=2, lr=3e-3, warmup_steps=1,
                                    progress=False)
        trainer = Trainer(model, cfg, tokenizer.to_str(), train_set, val_set, trainer_cfg, out / "run",
                          device=dist.device, rank=dist.rank, world_size=dist.world_size)
        trainer.fit()
        torch.save({"world_size": dist.world_size, "steps": trainer.step, "params": parameters(trainer.model)},
                   out / f"rank{dist.rank}.pt")
    finally:
        shutdown()


if __name__ == "__main__":
    main()
