"""``edge-clipguard info | train | evaluate | prune``: build, train, prune and score models (the [train] extra)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import AUGMENT_CHOICES
from ..contract import RESIZE_METHODS
from ..errors import ClipGuardError

DEFAULT_EPOCHS = 10  # train's epoch count when neither --epochs nor --max-steps is given


def _cmd_info(args: argparse.Namespace) -> None:
    from ..config import load_config
    from ..model import build_model
    from ..model.complexity import format_costs, part_costs

    if args.checkpoint:
        from .checkpoint import load_checkpoint, restore_model

        model, cfg = restore_model(load_checkpoint(args.checkpoint))
    else:
        cfg = load_config(args.config)
        model = build_model(cfg, pretrained=False)  # weights do not change the counts
    print(f"config '{cfg.name}': image {cfg.image_size}px, text {cfg.text.max_length} tokens, "
          f"classes {list(cfg.heads.class_names)}, top_k {cfg.heads.top_k}")
    print(format_costs(part_costs(model)))
    print("  (FLOPs of one forward pass at batch 1: matmuls and convolutions, 2 per multiply-add)")


def _cmd_explain(args: argparse.Namespace) -> None:
    import warnings

    from ..image_io import load_image
    from ..model.explain import explain
    from ..model.explain_render import save
    from .checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model

    payload = load_checkpoint(args.checkpoint)
    model, cfg = restore_model(payload)
    class_index = None
    if args.class_name is not None:
        if args.class_name not in cfg.heads.class_names:
            raise ClipGuardError(f"--class: {args.class_name!r} is not one of {list(cfg.heads.class_names)}")
        class_index = list(cfg.heads.class_names).index(args.class_name)
    image = load_image(args.image)
    with warnings.catch_warnings():  # autograd's stride notice on the input gradient is not the user's concern
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
        explanation = explain(model, load_tokenizer_from_checkpoint(payload), args.text, image, class_index)
    save(explanation, image, args.out)
    top = sorted(zip(explanation.tokens, explanation.token_attribution), key=lambda t: -abs(float(t[1])))[:5]
    print(f"score {explanation.score:.2f}/10; referred class {explanation.class_name}"
          + (f"; top detection {explanation.detection[1]:.2f}" if explanation.detection else "; no detection")
          + "; tokens moving the score most: " + ", ".join(f"{t} {v:+.3f}" for t, v in top))
    print(f"explanation: {args.out}")


def _cmd_train(args: argparse.Namespace) -> None:
    from .clipping import ClipConfig
    from .losses import DEFAULT_WEIGHTS
    from .run import TrainRequest, run_training
    from .trainer import TrainerConfig

    clip = ClipConfig(mode=args.clip, max_norm=args.clip_norm, percentile=args.clip_percentile)
    epochs = args.epochs if args.epochs is not None or args.max_steps else DEFAULT_EPOCHS
    max_skipped = TrainerConfig.max_skipped_in_row if args.max_skipped_in_row is None else args.max_skipped_in_row
    for flag in ("qat_text_activations", "qat_same_padding_convs", "qat_attention_matmuls"):
        if getattr(args, flag) and not args.qat:
            raise ClipGuardError(f"--{flag.replace('_', '-')} is only used with --qat")
    if args.target_data and not args.domain_adapt:
        raise ClipGuardError("--target-data is only used with --domain-adapt mmd|dann")
    weights = {**DEFAULT_WEIGHTS, "distill_score": args.distill_weight, "distill_heatmap": args.distill_weight,
               "domain": args.domain_weight}
    trainer = TrainerConfig(epochs=epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                            grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup, amp=args.amp, clip=clip,
                            loss_weights=weights, infonce_weight=args.infonce, seed=args.seed,
                            num_workers=args.workers, progress=args.progress, max_skipped_in_row=max_skipped,
                            tensorboard=_tensorboard_dir(args), balance=args.balance)
    summary = run_training(TrainRequest(config=args.config, data=tuple(args.data), val_data=tuple(args.val_data or ()),
                                        out=args.out, trainer=trainer, resume=args.resume, init_from=args.init_from,
                                        qat=args.qat, qat_text_activations=args.qat_text_activations,
                                        qat_same_padding_convs=args.qat_same_padding_convs,
                                        qat_attention_matmuls=args.qat_attention_matmuls,
                                        calib_batches=args.calib_batches, device=args.device,
                                        classes_from_data=args.classes_from_data, teacher=args.teacher,
                                        domain_adapt=args.domain_adapt, target_data=tuple(args.target_data or ()),
                                        resize=args.resize, augment=args.augment))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary
        print(f"trained: {summary}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from ..atomic import write_text_atomic
    from .checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model
    from .evaluate import evaluate_samples, format_report
    from .run import read_manifests

    if Path(args.checkpoint).is_dir():  # a bundle: scored by the runtime, as a device runs it
        from .bundle_eval import evaluate_bundle

        result = evaluate_bundle(args.checkpoint, tuple(args.data), args.backend, args.precision, args.threads)
    else:
        payload = load_checkpoint(args.checkpoint)
        model, cfg = restore_model(payload)
        samples = read_manifests(tuple(args.data), cfg.num_classes)
        result = evaluate_samples(model, load_tokenizer_from_checkpoint(payload), samples, args.batch_size)
    print(format_report(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
        print(f"json: {args.json}")


def _cmd_prune(args: argparse.Namespace) -> None:
    from .prune import PruneRequest, prune_checkpoint

    req = PruneRequest(checkpoint=args.checkpoint, out=args.out, flops=args.flops, importance=args.importance,
                       round_to=args.round_to, keep_min=args.keep_min, exclude=tuple(args.exclude or ()),
                       calib=args.calib, calib_batches=args.calib_batches, force=args.force)
    result = prune_checkpoint(req, log=print if args.verbose_search else (lambda _msg: None))
    before, after = result.before[-1], result.after[-1]
    print(f"pruned {args.checkpoint}: channel ratio {result.ratio:.3f}, {importance_label(args.importance)}; "
          f"FLOPs {after.flops / before.flops:.0%} of the source, params {after.params / before.params:.0%}")
    print(result.table())
    print(f"checkpoint: {result.checkpoint} (fine-tune it: train --init-from {result.checkpoint} "
          "[--teacher SOURCE.pt], then train --qat and export)")


def importance_label(importance: str) -> str:
    return {"magnitude": "L2 weight magnitude", "taylor": "first-order Taylor on calibration batches"}[importance]


def _tensorboard_dir(args: argparse.Namespace) -> str | None:
    """--tensorboard DIR, or OUT/tensorboard for a bare --tensorboard; None without the flag."""
    if args.tensorboard is None:
        return None
    return args.tensorboard or str(Path(args.out) / "tensorboard")


def register(commands) -> None:
    """Add ``info``, ``train`` and ``evaluate`` to the CLI's subparsers."""
    info = commands.add_parser("info", help="parameters and FLOPs per part of a config or checkpoint")
    info.add_argument("--config", default="base", help="built-in name (tiny, small, base) or JSON path")
    info.add_argument("--checkpoint", help="count this checkpoint's model instead of --config's")
    info.set_defaults(handler=_cmd_info)

    explain = commands.add_parser("explain", help="where the model looked: heat map, Grad-CAM, token attribution")
    explain.add_argument("checkpoint", help="a checkpoint written by 'train'")
    explain.add_argument("--text", required=True)
    explain.add_argument("--image", required=True)
    explain.add_argument("--out", required=True, help="PNG to write")
    explain.add_argument("--class", dest="class_name", help="explain this class (default: the one the text refers to)")
    explain.set_defaults(handler=_cmd_explain)

    train = commands.add_parser("train", help="train (or QAT fine-tune) the fusion model on manifests")
    train.add_argument("--config", default="base", help="built-in name (tiny, small, base) or JSON path")
    train.add_argument("--data", action="append", required=True, help="training manifest (repeatable)")
    train.add_argument("--val-data", action="append", help="validation manifest (repeatable; default: 5%% holdout)")
    train.add_argument("--out", required=True, help="run folder: last.pt, best.pt, steps.jsonl, curves.png")
    train.add_argument("--epochs", type=int, default=None,
                       help=f"passes over the data (default {DEFAULT_EPOCHS} unless --max-steps is given)")
    train.add_argument("--max-steps", type=int, default=0,
                       help="run N optimiser steps, however many epochs that takes; with --epochs, whichever "
                            "comes first (0: no step limit)")
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
    train.add_argument("--max-skipped-in-row", type=int, default=None, metavar="N",
                       help="stop when N steps in a row had a non-finite loss or gradient (default 25, above fp16 "
                            "AMP's own start-up skips; 0: never)")
    train.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--init-from", help="start from this checkpoint's weights (e.g. for --qat)")
    train.add_argument("--augment", choices=AUGMENT_CHOICES, default=None,
                       help="training augmentation: image, text, image+text or off (default: the config's "
                            "augment section, or the --init-from checkpoint's); its settings come from that section")
    train.add_argument("--resize", choices=RESIZE_METHODS,
                       help="the letterbox's resize method (default: the config's, or the --init-from checkpoint's); "
                            "--init-from OLD.pt --resize opencv moves a Pillow-trained model to the fast resize")
    train.add_argument("--qat", action="store_true", help="INT8 quantization-aware fine-tuning (ModelOpt)")
    train.add_argument("--qat-text-activations", action="store_true",
                       help="--qat: quantize the text tower's activations too (full INT8; default: INT8 weights, "
                            "float activations there)")
    train.add_argument("--qat-same-padding-convs", action="store_true",
                       help="--qat: quantize EfficientNet's same-padding convs too (the stem and stride-2 depthwise "
                            "convs; default: float)")
    train.add_argument("--qat-attention-matmuls", action="store_true",
                       help="--qat: quantize the fusion attention's matmuls too (q, k, v and the softmax's "
                            "probabilities; default: float)")
    train.add_argument("--calib-batches", type=int, default=16, help="--qat: batches for the initial calibration")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument("--balance", action="store_true",
                       help="class-balanced sampling: each class (and text-only rows) drawn about equally often per "
                            "epoch, for imported data with rare classes")
    train.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                       help="write TensorBoard event files (loss terms, gradient norms before/after clipping, the "
                            "clip threshold, LR, skipped steps, evaluation metrics and annotated validation scenes) "
                            "to DIR (default: OUT/tensorboard); tensorboard --logdir DIR shows them")
    train.add_argument("--classes-from-data", action="store_true",
                       help="class names from classes.json next to the first --data manifest (data import writes it)")
    train.add_argument("--teacher", metavar="CKPT",
                       help="distil from this checkpoint: soft targets on the score and the heat maps (e.g. "
                            "--config small --teacher base_run/best.pt)")
    train.add_argument("--distill-weight", type=float, default=1.0, help="weight of each --teacher term")
    train.add_argument("--domain-adapt", choices=("mmd", "dann"),
                       help="align pooled fused text features of training and unlabelled target rows")
    train.add_argument("--target-data", action="append", metavar="UNLABELED.jsonl",
                       help="--domain-adapt: target rows (repeatable; scores ignored; default: --val-data)")
    train.add_argument("--domain-weight", type=float, default=1.0, help="weight of the --domain-adapt term")
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="score metrics per domain, mAP, text-masked ablation")
    evaluate.add_argument("checkpoint", help="a checkpoint (PyTorch), or a bundle folder (scored by the runtime with "
                                             "--backend/--precision, every top-K detection kept)")
    evaluate.add_argument("--backend", default="auto", help="bundle only: auto, onnxruntime, openvino or tensorrt")
    evaluate.add_argument("--precision", default=None, help="bundle only: fp32, fp16 or int8 (default: the backend's)")
    evaluate.add_argument("--threads", type=int, default=None, help="bundle only: CPU threads")
    evaluate.add_argument("--data", action="append", required=True, help="manifest (repeatable)")
    evaluate.add_argument("--json", help="also write the result here")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.set_defaults(handler=_cmd_evaluate)

    prune = commands.add_parser("prune", help="structured pruning of a checkpoint to a FLOPs target (channels, "
                                              "attention heads, FFN units)")
    prune.add_argument("checkpoint", help="an fp32 checkpoint written by 'train' (prune before --qat)")
    prune.add_argument("--out", required=True, help="folder for pruned.pt and prune.json")
    prune.add_argument("--flops", type=float, default=0.5, help="target FLOPs as a fraction of the source's")
    prune.add_argument("--importance", default="magnitude", choices=("magnitude", "taylor"),
                       help="rank channels by weight L2 norm, or by |w * dL/dw| on calibration batches")
    prune.add_argument("--round-to", type=int, default=8, help="channel counts stay multiples of this")
    prune.add_argument("--keep-min", type=int, default=16, help="no layer keeps fewer output channels than this")
    prune.add_argument("--exclude", action="append", metavar="PART",
                       help="leave this part whole (repeatable): text_tower, image_tower, fusion, box_head, ...")
    prune.add_argument("--calib", help="taylor: calibration folder or manifest (default: calibration_data/)")
    prune.add_argument("--calib-batches", type=int, default=4, help="taylor: batches of 8 for the gradients")
    prune.add_argument("--verbose-search", action="store_true", help="print each step of the ratio search")
    prune.add_argument("--force", action="store_true", help="replace OUT/pruned.pt")
    prune.set_defaults(handler=_cmd_prune)

