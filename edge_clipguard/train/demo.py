"""The main job on built-in defaults: data -> short training -> QAT -> export --int8 -> predict --draw -> profile.

Everything lands under one work folder; datasets already there are reused, so a second run
goes straight to training. Each step calls the same library function as its CLI command.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import write_text_atomic
from ..config import load_config
from ..errors import ClipGuardError
from ..paths import default_vader_dir


@dataclass(frozen=True)
class DemoConfig:
    work_dir: str = "runs/demo"
    config: str = "base"
    train_scenes: int = 384
    val_scenes: int = 64  # validation while training
    # Held-out scenes export's accuracy column is measured on: 64 could not resolve a 10-point INT8 difference
    # from noise (a paired-bootstrap interval of about ±5 points); 256 take seconds on OpenVINO.
    test_scenes: int = 256
    steps: int = 120  # ~2.5 min of training on 2 cores; enough for the boxes to start finding the named class
    batch_size: int = 8
    # Quantization-aware fine-tuning before export --int8 (0: export the fp32 run with PTQ). On 512 held-out
    # scenes, PTQ of the 120-step run cost 1.7 mAP50 points in INT8; 60 QAT steps (~2.3 min) cost 0.3.
    qat_steps: int = 60
    qat_lr: float = 2e-5
    seed: int = 0
    profile_iters: int = 20
    compare_compile: bool = False  # torch.compile on a 2-core CPU costs minutes of compiling

    def __post_init__(self) -> None:
        """Refuse counts that would train nothing or loop on nothing, before any data is written."""
        minimums = {"--steps": (self.steps, 1), "--qat-steps": (self.qat_steps, 0),
                    "--batch-size": (self.batch_size, 1), "--train-scenes": (self.train_scenes, 1),
                    "--val-scenes": (self.val_scenes, 1), "--test-scenes": (self.test_scenes, 1),
                    "--profile-iters": (self.profile_iters, 1)}
        for flag, (value, least) in minimums.items():
            if value < least:
                raise ClipGuardError(f"demo {flag}: must be at least {least}, got {value}")


def _scenes(scenes_dir: Path, split: str, count: int, seed: int, vader_dir: Path) -> Path:
    from ..data.manifest import read_manifest
    from ..data.scenes import generate_scenes

    manifest = scenes_dir / f"{split}.jsonl"
    if manifest.is_file() and len(read_manifest(manifest)) == count:
        return manifest
    return generate_scenes(scenes_dir, count, seed, split, vader_dir)


def run_demo(cfg: DemoConfig, log=print) -> dict:
    import torch

    from ..data.dataset import ManifestDataset
    from ..data.manifest import read_manifest
    from ..data.vader import prepare_vader
    from ..model import build_model
    from ..text.tokenizer import default_tokenizer
    from .quick_eval import quick_eval
    from .trainer import Trainer, TrainerConfig

    work = Path(cfg.work_dir)
    started = time.perf_counter()
    vader_dir = default_vader_dir()
    log(f"[1/8] VADER ground truth -> {prepare_vader(vader_dir)}")
    scenes_dir = work / "scenes"
    train_manifest = _scenes(scenes_dir, "train", cfg.train_scenes, cfg.seed, vader_dir)
    val_manifest = _scenes(scenes_dir, "val", cfg.val_scenes, cfg.seed, vader_dir)
    test_manifest = _scenes(scenes_dir, "test", cfg.test_scenes, cfg.seed, vader_dir)
    log(f"[2/8] scenes -> {train_manifest} ({cfg.train_scenes}), {val_manifest} ({cfg.val_scenes}), "
        f"{test_manifest} ({cfg.test_scenes}, held out for export's accuracy column)")

    torch.manual_seed(cfg.seed)
    model_cfg = load_config(cfg.config)
    model = build_model(model_cfg)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    log(f"[3/8] model '{model_cfg.name}': {n_params:.1f} M parameters, image {model_cfg.image_size}px, "
        f"text {model_cfg.text.max_length} tokens")
    tokenizer = default_tokenizer(model_cfg.text.max_length)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(work / "tokenizer.json"))

    train_set = ManifestDataset(read_manifest(train_manifest, model_cfg.num_classes), tokenizer, model_cfg.image_size,
                               model_cfg.resize)
    val_set = ManifestDataset(read_manifest(val_manifest, model_cfg.num_classes), tokenizer, model_cfg.image_size,
                               model_cfg.resize)

    train_cfg = TrainerConfig(max_steps=cfg.steps, batch_size=cfg.batch_size, warmup_steps=5,
                              seed=cfg.seed)
    trainer = Trainer(model, model_cfg, tokenizer.to_str(), train_set, val_set, train_cfg, work / "run")
    before = quick_eval(model, trainer.loader(0, val_set, shuffle=False))
    summary = trainer.fit()
    after = quick_eval(model, trainer.loader(0, val_set, shuffle=False))
    log(f"[4/8] trained {summary['steps']} steps ({summary['seconds']:.0f} s, checkpoint {work / 'run' / 'last.pt'});"
        " validation before -> after:")
    log(f"      {'metric':<14}{'before':>10}{'after':>10}")
    for key in ("loss", "score_mae", "score_pearson", "top1_hit"):
        log(f"      {key:<14}{before[key]:>10.3f}{after[key]:>10.3f}")
    checkpoint = work / "run" / "last.pt"
    if cfg.qat_steps:
        checkpoint = _qat(work, checkpoint, train_manifest, val_manifest, cfg)
        log(f"[5/8] QAT: {cfg.qat_steps} INT8 quantization-aware steps at lr {cfg.qat_lr} -> {checkpoint}")
    else:
        log("[5/8] QAT skipped (--qat-steps 0): export calibrates the fp32 run (PTQ)")
    bundle, export_table = _export(checkpoint, work, test_manifest)
    log(f"[6/8] export --int8 -> {bundle}\n{export_table}")
    picture, prediction = _predict(bundle, work, val_manifest, model_cfg.num_classes)
    log(f"[7/8] predict ({prediction['artifact']}) -> score {prediction['score']:.2f}, "
        f"{len(prediction['detections'])} boxes; picture: {picture}")
    profile_json, profile_table = _profile(bundle, work, cfg)
    log(f"[8/8] profile (batch 1, {cfg.profile_iters} iterations; ms)\n{profile_table}")
    result = {"demo": asdict(cfg), "model_params_m": round(n_params, 2), "before": before, "after": after,
              "train": summary, "exported_checkpoint": str(checkpoint), "bundle": str(bundle),
              "picture": str(picture), "prediction": prediction,
              "profile": str(profile_json), "seconds": round(time.perf_counter() - started, 1)}
    path = write_text_atomic(work / "demo_result.json", json.dumps(result, indent=2) + "\n")
    log(f"done in {result['seconds']:.0f} s")
    log(f"  picture: {picture}\n  bundle:  {bundle}\n  profile: {profile_json}\n  summary: {path}")
    return result


def _qat(work: Path, checkpoint: Path, train_manifest: Path, val_manifest: Path, cfg: DemoConfig) -> Path:
    """``train --qat --init-from CHECKPOINT``: INT8 fake-quant fine-tuning, so export --int8 keeps fp32's mAP."""
    from .run import TrainRequest, run_training
    from .trainer import TrainerConfig

    out = work / "qat"
    run_training(TrainRequest(data=(str(train_manifest),), val_data=(str(val_manifest),), out=str(out),
                              init_from=str(checkpoint), qat=True,
                              trainer=TrainerConfig(max_steps=cfg.qat_steps, batch_size=cfg.batch_size, lr=cfg.qat_lr,
                                                    warmup_steps=5, seed=cfg.seed)),
                 log=lambda *_: None)
    return out / "last.pt"


def _export(checkpoint: Path, work: Path, test_manifest: Path) -> tuple[Path, str]:
    from ..export.bundle_writer import export_bundle, format_summary
    from ..export.types import ExportRequest

    result = export_bundle(ExportRequest(checkpoint=str(checkpoint), out=str(work / "bundle"),
                                         int8=True, val_data=str(test_manifest), engine="auto", force=True),
                           log=lambda *_: None)
    return result.bundle, format_summary(result)


def _predict(bundle: Path, work: Path, val_manifest: Path, num_classes: int) -> tuple[Path, dict]:
    from ..data.manifest import read_manifest
    from ..image_io import load_image
    from ..runtime.draw import draw_result, save_image_atomic
    from ..runtime.predictor import Predictor

    sample = next(s for s in read_manifest(val_manifest, num_classes) if s.image)
    image = load_image(sample.image)
    with Predictor.load(bundle, backend="auto", device="cpu", precision="int8") as predictor:
        result = predictor.predict(sample.text, image)
        artifact = predictor.describe()
    picture = save_image_atomic(draw_result(image, result, sample.text), work / "prediction.png")
    return picture, {"text": sample.text, "artifact": artifact, **result.to_dict()}


def _profile(bundle: Path, work: Path, cfg: DemoConfig) -> tuple[Path, str]:
    from ..runtime.profile import profile_bundle
    from ..runtime.profile_report import format_table, write_json
    from ..runtime.profile_types import ProfileRequest

    report = profile_bundle(ProfileRequest(bundle=str(bundle), backend="all", device="cpu", stream=False,
                                           batch_sizes=(1,), iters=cfg.profile_iters, warmup=3,
                                           compare_torch=str(work / "run" / "last.pt"),
                                           torch_compile=cfg.compare_compile))
    return write_json(report, work / "profile.json"), format_table(report)


def _cmd_demo(args) -> None:
    run_demo(DemoConfig(work_dir=args.work, config=args.config, train_scenes=args.train_scenes,
                        val_scenes=args.val_scenes, test_scenes=args.test_scenes, steps=args.steps,
                        batch_size=args.batch_size, seed=args.seed, qat_steps=args.qat_steps,
                        profile_iters=args.profile_iters, compare_compile=args.compile))


def register(commands) -> None:
    """Add ``demo`` to the CLI's subparsers; its defaults come from DemoConfig (one source)."""
    demo = commands.add_parser("demo", help="the main job on built-in defaults")
    defaults = DemoConfig()  # one source for the demo's defaults
    demo.add_argument("--work", default=defaults.work_dir, help="work folder")
    demo.add_argument("--config", default=defaults.config)
    demo.add_argument("--train-scenes", type=int, default=defaults.train_scenes)
    demo.add_argument("--val-scenes", type=int, default=defaults.val_scenes, help="validation scenes while training")
    demo.add_argument("--test-scenes", type=int, default=defaults.test_scenes,
                      help="held-out scenes the export's INT8 accuracy (with 95 %% intervals) is measured on")
    demo.add_argument("--steps", type=int, default=defaults.steps)
    demo.add_argument("--batch-size", type=int, default=defaults.batch_size)
    demo.add_argument("--qat-steps", type=int, default=defaults.qat_steps,
                      help="INT8 quantization-aware fine-tuning steps before export (0: PTQ only)")
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--profile-iters", type=int, default=defaults.profile_iters,
                      help="timed iterations per profile row")
    demo.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                      help="also profile torch.compile (slow to compile on a small CPU)")
    demo.set_defaults(handler=_cmd_demo)
