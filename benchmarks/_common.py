"""Shared pieces of the training benchmarks (bench_accuracy, bench_clip_modes, bench_quant).

Data: the VADER ground truth (prepared in the cache by ``edge_clipguard.data.vader``) and rendered
scenes (``edge_clipguard.data.scenes``) in ``--data-dir``, generated on first use. Test scenes take
only VADER *test* sentences, so both test sets are held out from training.

Training drives the library's ``Trainer`` one step at a time (``Trainer.train_step`` /
``Trainer.validate``: the same AdamW + warm-up/cosine, clipping, non-finite skipping the CLI uses)
so a benchmark can validate every ``eval_every`` steps and stop a run early once it has diverged.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edge_clipguard.atomic import write_text_atomic
from edge_clipguard.contract import DEFAULT_RESIZE
from edge_clipguard.data.manifest import Sample, read_manifest
from edge_clipguard.data.vader import load_vader, prepare_vader
from edge_clipguard.paths import default_vader_dir
from edge_clipguard.train.metrics import pearson

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ----- data ------------------------------------------------------------------------------------
def scene_rows(data_dir: Path, split: str, count: int, num_classes: int, seed: int = 0) -> list[Sample]:
    """The first ``count`` scenes of ``data_dir/scenes/<split>.jsonl``, rendering the set only when it
    holds fewer. Scene ``i`` depends only on (seed, split, i), so a smaller request takes a prefix
    instead of re-rendering, which would delete images a running benchmark still reads."""
    from edge_clipguard.data.scenes import generate_scenes

    manifest = data_dir / "scenes" / f"{split}.jsonl"
    if not manifest.is_file() or len(read_manifest(manifest)) < count:
        generate_scenes(data_dir / "scenes", count, seed, split, default_vader_dir())
    return read_manifest(manifest, num_classes)[:count]


def vader_rows(split: str, limit: int = 0, seed: int = 0) -> list[Sample]:
    """VADER text-only rows of one split; ``limit`` > 0 takes a seeded random subset, stratified by domain
    (the same fraction of each domain), so per-domain numbers stay comparable."""
    prepare_vader(default_vader_dir())
    rows = load_vader(default_vader_dir(), split=split)
    if limit <= 0 or limit >= len(rows):
        return rows
    rng = random.Random(f"bench:{split}:{seed}")
    fraction = limit / len(rows)
    out = []
    for domain in sorted({r.domain for r in rows}):
        part = [r for r in rows if r.domain == domain]
        out.extend(rng.sample(part, max(2, round(len(part) * fraction))))
    return out


@dataclass
class BenchData:
    train: list[Sample]
    val: list[Sample]
    test_vader: list[Sample]
    test_scenes: list[Sample]
    calib: list[Sample] = field(default_factory=list)  # train scenes (image + text), for PTQ calibration

    def describe(self) -> str:
        n_img = sum(r.image is not None for r in self.train)
        return (f"train {len(self.train)} rows ({n_img} scenes + {len(self.train) - n_img} VADER text-only), "
                f"val {len(self.val)}, test {len(self.test_vader)} VADER + {len(self.test_scenes)} scenes")


def load_data(data_dir: str | Path, num_classes: int, train_scenes: int, val_scenes: int, test_scenes: int,
              vader_train: int, vader_val: int, vader_test: int, seed: int = 0) -> BenchData:
    data_dir = Path(data_dir)
    prepare_vader(default_vader_dir())
    tr = scene_rows(data_dir, "train", train_scenes, num_classes)
    va = scene_rows(data_dir, "val", val_scenes, num_classes)
    te = scene_rows(data_dir, "test", test_scenes, num_classes) if test_scenes > 0 else []
    train = tr + (vader_rows("train", vader_train, seed) if vader_train >= 0 else [])
    val = va + vader_rows("val", vader_val, seed)
    return BenchData(train=train, val=val, test_vader=vader_rows("test", vader_test, seed), test_scenes=te, calib=tr)


# ----- training --------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class RunResult:
    steps: int
    seconds: float
    rows: list[dict]  # the trainer's per-step rows
    val_curve: list[tuple[int, dict]]  # (step, Trainer.validate()) at step 0, every eval_every, and the end
    stopped_early: str | None = None


class CachedDataset(torch.utils.data.Dataset):
    """Keeps decoded items in memory (small images only): repeated runs skip JPEG decode + letterbox."""

    def __init__(self, dataset):
        self.dataset, self.items = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if index not in self.items:
            self.items[index] = self.dataset[index]
        return self.items[index]


def make_datasets(data: BenchData, tokenizer, image_size: int, cache: bool | None = None,
                  resize: str = DEFAULT_RESIZE):
    """(train_set, val_set); cached in memory by default when images are <= 128 px."""
    from edge_clipguard.data.dataset import ManifestDataset

    cache = image_size <= 128 if cache is None else cache
    sets = [ManifestDataset(rows, tokenizer, image_size, resize) for rows in (data.train, data.val)]
    return tuple(CachedDataset(s) if cache else s for s in sets)


def train(model, model_cfg, tokenizer, data: BenchData, tcfg, out_dir: str | Path, device="cpu",
          eval_every: int = 0, stop_if=None, modelopt_state_fn=None, save: bool = True, log=None,
          sets=None, **trainer_kwargs) -> RunResult:
    """Train ``model`` for ``tcfg.max_steps`` steps with the library Trainer, validating at step 0, every
    ``eval_every`` steps (0: only at the end) and at the end. ``stop_if(row, val_or_None, step0_val)``
    returning a reason string stops the run early (e.g. once it has diverged). ``trainer_kwargs`` go to
    the Trainer (``distiller``, ``domain_adapter``, ``target_set``)."""
    from edge_clipguard.train.trainer import Trainer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_set, val_set = sets or make_datasets(data, tokenizer, model_cfg.image_size, resize=model_cfg.resize)
    trainer = Trainer(model, model_cfg, tokenizer.to_str(), train_set, val_set, tcfg, out, device=device,
                      modelopt_state_fn=modelopt_state_fn, **trainer_kwargs)
    torch.manual_seed(tcfg.seed)  # as Trainer.fit does
    started = time.perf_counter()
    rows: list[dict] = []
    curve = [(0, trainer.validate())]
    stopped = None
    while trainer.step < trainer.steps and stopped is None:
        for batch in trainer.loader(trainer.epoch):
            row = trainer.train_step([batch])
            rows.append(row)
            val = None
            if (eval_every and trainer.step % eval_every == 0) or trainer.step >= trainer.steps:
                val = trainer.validate()
                curve.append((trainer.step, val))
                if save:  # a long run can be evaluated (--checkpoint) before it ends
                    trainer.save("last.pt", metrics=val)
                if log:
                    log(f"  step {trainer.step:>5}  loss {row['loss']:.4f}  val_loss {val['val_loss']:.4f}  "
                        f"clipped {sum(r['clipped'] for r in rows)}/{len(rows)}  "
                        f"{time.perf_counter() - started:.0f}s")
            if stop_if is not None:
                stopped = stop_if(row, val, curve[0][1])
            if stopped or trainer.step >= trainer.steps:
                break
        trainer.epoch += 1
    if curve[-1][0] != trainer.step:
        curve.append((trainer.step, trainer.validate()))
    with (out / "steps.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    if save:
        trainer.save("last.pt", metrics=curve[-1][1])
    return RunResult(trainer.step, round(time.perf_counter() - started, 1), rows, curve, stopped)


# ----- evaluation ------------------------------------------------------------------------------
def evaluate_text(model, tokenizer, rows: list[Sample], batch_size: int, device) -> np.ndarray:
    """Predicted 0-10 scores for text-only rows (blank image, as the trainer sees them)."""
    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.train.evaluate import predict_dataset, torch_infer

    dataset = ManifestDataset(rows, tokenizer, model.cfg.image_size, model.cfg.resize)
    return predict_dataset(torch_infer(model, device), dataset, batch_size).scores


def evaluate_scenes(model, tokenizer, rows: list[Sample], batch_size: int, device, ablation: bool = True) -> dict:
    """``evaluate_samples`` (score per domain, pycocotools mAP, text-masked ablation) or, without the
    ablation, the same first two parts only."""
    from edge_clipguard.train.evaluate import evaluate_model, evaluate_samples, torch_infer

    if ablation:
        return evaluate_samples(model, tokenizer, rows, batch_size, device)
    cfg = model.cfg
    return evaluate_model(torch_infer(model, device), rows, tokenizer, cfg, batch_size)[0]


def bootstrap_diff(model: np.ndarray, other: np.ndarray, truth: np.ndarray, n: int = 1000,
                   seed: int = 0) -> tuple[float, float]:
    """95% paired-bootstrap interval of pearson(model, truth) - pearson(other, truth) over rows."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, len(truth), len(truth))
        d = pearson(model[idx], truth[idx]) - pearson(other[idx], truth[idx])
        if math.isfinite(d):
            diffs.append(d)
    if not diffs:
        return float("nan"), float("nan")
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


# ----- output ----------------------------------------------------------------------------------
def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in header]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict:
    import os
    import platform

    from edge_clipguard.runtime.profile import cpu_model

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "platform": platform.platform(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "cpu": cpu_model()}


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    return value


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, json.dumps(_clean(payload), indent=2) + "\n")


def quick_metrics(model, dataset, rows: list[Sample], batch_size: int, device) -> dict:
    """Score Pearson/MAE (pooled over ``rows``) and pycocotools mAP on the rows that have images."""
    from edge_clipguard.train.evaluate import predict_dataset, score_predictions, torch_infer

    metrics = score_predictions(predict_dataset(torch_infer(model, device), dataset, batch_size), rows,
                                model.cfg.num_classes)
    pooled, det = metrics["score"]["pooled"], metrics["detection"]
    return {"score_pearson": pooled["pearson"], "score_mae": pooled["mae"], "map50": det["map50"],
            "map50_95": det["map50_95"]}


def add_data_args(p, train_scenes=1024, val_scenes=64, test_scenes=256, vader_train=4096, vader_val=256,
                  vader_test=0) -> None:
    p.add_argument("--data-dir", default=str(default_vader_dir().parent / "bench"),
                   help="scenes are rendered here on first use (VADER comes from the cache)")
    p.add_argument("--train-scenes", type=int, default=train_scenes)
    p.add_argument("--val-scenes", type=int, default=val_scenes)
    p.add_argument("--test-scenes", type=int, default=test_scenes)
    p.add_argument("--vader-train", type=int, default=vader_train, help="VADER train sentences mixed in (0: all)")
    p.add_argument("--vader-val", type=int, default=vader_val)
    p.add_argument("--vader-test", type=int, default=vader_test, help="held-out VADER test rows (0: all 2,371)")


def add_train_args(p, steps=300, batch_size=32, lr=3e-4, warmup=20) -> None:
    p.add_argument("--checkpoint", help="evaluate this checkpoint instead of training one")
    p.add_argument("--steps", type=int, default=steps, help="training steps when no --checkpoint")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--clip", default="norm", choices=("none", "norm", "adaptive", "per-modality"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=-1, help="validate every N training steps (-1: steps/5, 0: end)")
    p.add_argument("--eval-batch", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def get_model(args, work_dir: str | Path, log=print):
    """(model, model_cfg, tokenizer, data, info): ``args.checkpoint`` restored, or a model of ``args.config``
    trained for ``args.steps`` steps (checkpoint: ``work_dir/last.pt``)."""
    from edge_clipguard.config import load_config
    from edge_clipguard.model import build_model
    from edge_clipguard.text.tokenizer import default_tokenizer
    from edge_clipguard.train.checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model
    from edge_clipguard.train.clipping import ClipConfig
    from edge_clipguard.train.trainer import TrainerConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.checkpoint:
        payload = load_checkpoint(args.checkpoint)
        model, model_cfg = restore_model(payload)
        tokenizer = load_tokenizer_from_checkpoint(payload)
    else:
        model_cfg = load_config(args.config)
        torch.manual_seed(args.seed)
        model = build_model(model_cfg)
        tokenizer = default_tokenizer(model_cfg.text.max_length)
    data = load_data(args.data_dir, model_cfg.num_classes, args.train_scenes, args.val_scenes, args.test_scenes,
                     args.vader_train, args.vader_val, args.vader_test, args.seed)
    log(f"model '{model_cfg.name}', device {device}, {data.describe()}")
    info = {"config": model_cfg.name, "checkpoint": args.checkpoint, "device": str(device)}
    if not args.checkpoint:
        tcfg = TrainerConfig(epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             warmup_steps=args.warmup, seed=args.seed, progress=False,
                             clip=ClipConfig(mode=args.clip))
        every = max(1, args.steps // 5) if args.eval_every < 0 else args.eval_every
        result = train(model, model_cfg, tokenizer, data, tcfg, work_dir, device=device, eval_every=every, log=log)
        info.update(checkpoint=str(Path(work_dir) / "last.pt"), trained_steps=result.steps,
                    train_seconds=result.seconds, val_curve=[(s, v["val_loss"]) for s, v in result.val_curve],
                    trainer_config={"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                                    "warmup": args.warmup, "clip": args.clip, "seed": args.seed})
    return model.eval(), model_cfg, tokenizer, data, info
