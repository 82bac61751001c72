"""The reference model's data: the same rows the accuracy benchmarks use, written as CLI manifests.

    python benchmarks/reference_data.py --out DIR [--train-scenes 4096] [--vader-train 4096] [--test-scenes 512]

Writes ``DIR/train.jsonl`` (rendered training scenes + a domain-stratified, seeded VADER subset of text-only
rows, half and half so the box head and the score head both see every batch), ``DIR/val.jsonl`` (64 scenes +
256 VADER validation rows), ``DIR/test.jsonl`` (held-out test scenes) and ``DIR/vader_test.jsonl`` (all 2,371
VADER test rows). Scene ``i`` of a split depends only on (seed, split, i) and the VADER subset only on the
seed, so every machine gets the same files: the recipe in ``docs/guide/reference-model.md`` then trains
``edge-clipguard train`` on them. Scenes are rendered into ``--scenes-dir`` (shared with the benchmarks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.data.manifest import write_manifest  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for train/val/test/vader_test.jsonl")
    p.add_argument("--scenes-dir", default=str(C.default_vader_dir().parent / "bench"),
                   help="scenes are rendered under DIR/scenes on first use")
    p.add_argument("--train-scenes", type=int, default=4096)
    p.add_argument("--val-scenes", type=int, default=64)
    p.add_argument("--test-scenes", type=int, default=512)
    p.add_argument("--vader-train", type=int, default=4096)
    p.add_argument("--vader-val", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    scenes_dir, out = Path(args.scenes_dir), Path(args.out)
    parts = {
        "train.jsonl": C.scene_rows(scenes_dir, "train", args.train_scenes, None)
        + C.vader_rows("train", args.vader_train, args.seed),
        "val.jsonl": C.scene_rows(scenes_dir, "val", args.val_scenes, None)
        + C.vader_rows("val", args.vader_val, args.seed),
        "test.jsonl": C.scene_rows(scenes_dir, "test", args.test_scenes, None),
        "vader_test.jsonl": C.vader_rows("test", 0, args.seed),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in parts.items():
        print(f"{write_manifest(out / name, rows)}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
