"""``edge-clipguard train``: manifests + config -> a trained checkpoint (optionally QAT), under torchrun too."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ClipGuardError
from .trainer import TrainerConfig

VAL_HOLDOUT = 0.05


@dataclass(frozen=True)
class TrainRequest:
    config: str = "base"
    data: tuple[str, ...] = ()
    val_data: tuple[str, ...] = ()
    out: str = "runs/train"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    resume: bool = False
    init_from: str | None = None  # start from this checkpoint's weights (its config wins)
    qat: bool = False
    qat_text_activations: bool = False  # --qat: quantize the text tower's activations too (else weight-only there)
    qat_same_padding_convs: bool = False  # --qat: quantize EfficientNet's same-padding convs too (else float)
    qat_attention_matmuls: bool = False  # --qat: Q/DQ on the fusion attention's q·kᵀ and p·v inputs (else float)
    calib_batches: int = 16
    device: str = "auto"
    classes_from_data: bool = False  # heads.class_names from classes.json next to the first data manifest
    teacher: str | None = None  # distil from this checkpoint (train/distill.py)
    domain_adapt: str | None = None  # "mmd" or "dann" (train/domain_adapt.py)
    target_data: tuple[str, ...] = ()  # unlabelled target manifests for domain_adapt (default: val_data)
    # The letterbox's resize method (contract.RESIZE_METHODS); None: the config's, or the --init-from
    # checkpoint's. Fine-tuning a checkpoint trained on Pillow's resize with "opencv" moves it to the fast one.
    resize: str | None = None
    # "image", "text", "image+text" or "off": turns the config's augmentation parts on or off (AUGMENT_CHOICES);
    # None keeps the config's (or the --init-from checkpoint's). A fine-tune is where it is usually switched.
    augment: str | None = None


def read_manifests(paths: tuple[str, ...], num_classes: int, unlabeled: bool = False):
    from ..data.text_refs import load_manifest

    samples = []
    for path in paths:
        samples.extend(load_manifest(path, num_classes, unlabeled=unlabeled))
    return samples


def holdout(samples: list, fraction: float, seed: int) -> tuple[list, list]:
    """Seeded split of one list into (train, val) when no validation manifest is given."""
    order = list(range(len(samples)))
    random.Random(f"holdout:{seed}").shuffle(order)
    n_val = max(1, int(len(samples) * fraction))
    val_idx = set(order[:n_val])
    return [s for i, s in enumerate(samples) if i not in val_idx], [samples[i] for i in sorted(val_idx)]


def run_training(req: TrainRequest, log=print) -> dict:
    import torch

    from ..config import load_config, with_augment, with_class_names
    from ..data.dataset import ManifestDataset
    from ..data.imported import classes_for_manifests, classes_path
    from ..model import build_model
    from ..text.tokenizer import default_tokenizer
    from .checkpoint import checkpoint_config, load_checkpoint, restore_model
    from .distributed import init_from_env, shutdown
    from .trainer import Trainer

    if not req.data:
        raise ClipGuardError("train: give at least one --data manifest")
    if req.resume and not (Path(req.out) / "last.pt").is_file():
        raise ClipGuardError(f"--resume: {Path(req.out) / 'last.pt'} not found")
    dist = init_from_env(req.device)
    try:
        torch.manual_seed(req.trainer.seed)
        classes = classes_for_manifests(req.data + req.val_data) if req.classes_from_data else None
        if req.init_from:
            payload = load_checkpoint(req.init_from)
            if payload.get("modelopt_state") and req.qat:
                raise ClipGuardError(f"{req.init_from}: already quantized; drop --qat or start from an fp32 run")
            model, model_cfg = restore_model(payload)
        else:
            model_cfg = load_config(req.config)
            if req.resume:  # the run keeps the resize it began with (Pillow's for a run begun before the field)
                begun = checkpoint_config(load_checkpoint(Path(req.out) / "last.pt"))
                # and a pruned run its widths (its config is the pruned checkpoint's, whatever --config says)
                model_cfg = begun if begun.pruned else dataclasses.replace(model_cfg, resize=begun.resize,
                                                                            augment=begun.augment)
            elif model_cfg.pruned:
                raise ClipGuardError(f"--config {req.config}: a pruned config's weights exist only in its "
                                     "checkpoint; fine-tune it with --init-from PRUNED.pt")
            if classes:
                model_cfg = with_class_names(model_cfg, classes, str(classes_path(req.data[0])))
            model = build_model(model_cfg)
        if req.resize and req.resize != model_cfg.resize:
            model_cfg = dataclasses.replace(model_cfg, resize=req.resize)
            model.cfg = model_cfg  # the config the checkpoints record and export reads
        if req.augment is not None:
            model_cfg = with_augment(model_cfg, req.augment)
            model.cfg = model_cfg
        if classes and tuple(model_cfg.heads.class_names) != classes:
            raise ClipGuardError(f"--init-from {req.init_from}: its classes differ from {classes_path(req.data[0])}")
        tokenizer = default_tokenizer(model_cfg.text.max_length)
        train_rows = read_manifests(req.data, model_cfg.num_classes)
        if req.val_data:
            val_rows = read_manifests(req.val_data, model_cfg.num_classes)
        else:
            train_rows, val_rows = holdout(train_rows, VAL_HOLDOUT, req.trainer.seed)
        train_set = ManifestDataset(train_rows, tokenizer, model_cfg.image_size, model_cfg.resize,
                                    augment=model_cfg.augment, seed=req.trainer.seed,
                                    class_names=tuple(model_cfg.heads.class_names))
        val_set = ManifestDataset(val_rows, tokenizer, model_cfg.image_size, model_cfg.resize)
        distiller, adapter, target_set = None, None, None
        if req.teacher:
            from .distill import Distiller

            teacher, _ = restore_model(load_checkpoint(req.teacher))
            distiller = Distiller(teacher, dist.device)
            distiller.check_compatible(model_cfg)
            if dist.rank == 0:
                log(f"distill: teacher {req.teacher} ('{teacher.cfg.name}', {teacher.cfg.image_size}px)")
        if req.domain_adapt:
            from .domain_adapt import DomainAdapter

            target_paths = req.target_data or req.val_data
            if not target_paths:
                raise ClipGuardError("--domain-adapt: give --target-data (unlabelled target rows) or --val-data")
            target_rows = read_manifests(target_paths, model_cfg.num_classes, unlabeled=True)
            target_set = ManifestDataset(target_rows, tokenizer, model_cfg.image_size, model_cfg.resize)
            adapter = DomainAdapter(req.domain_adapt, model_cfg.fusion.dim)
            if dist.rank == 0:
                log(f"domain-adapt: {req.domain_adapt}, {len(target_set)} target rows from {list(target_paths)}")
        state_fn = None
        if req.qat:
            from ..atomic import write_text_atomic
            from .quantize import calibration_loop, modelopt_state, quant_summary, quantize_int8, quantized_fraction

            model = quantize_int8(model, calibration_loop(train_set, req.calib_batches, req.trainer.batch_size),
                                  req.qat_text_activations, req.qat_same_padding_convs,
                                  req.qat_attention_matmuls)
            state_fn = modelopt_state
            if dist.rank == 0:
                summary_path = write_text_atomic(Path(req.out) / "quant_summary.txt", quant_summary(model))
                counts = ", ".join(f"{k} {on}/{total}" for k, (on, total) in quantized_fraction(model).items())
                log(f"QAT: weight quantizers enabled per part: {counts}; full summary: {summary_path}")
            log(f"QAT: calibrated INT8 fake-quant on {req.calib_batches} batches; fine-tuning at lr {req.trainer.lr}")
        if dist.rank == 0:
            log(f"train: {len(train_set)} rows, val: {len(val_set)} rows, model '{model_cfg.name}', "
                f"device {dist.device}, world size {dist.world_size}, clip {req.trainer.clip.mode}")
        trainer = Trainer(model, model_cfg, tokenizer.to_str(), train_set, val_set, req.trainer, req.out,
                          device=dist.device, rank=dist.rank, world_size=dist.world_size, modelopt_state_fn=state_fn,
                          distiller=distiller, domain_adapter=adapter, target_set=target_set)
        if dist.rank == 0:
            log(f"train: {trainer.limit_reason}")
        return trainer.fit(resume=req.resume)
    finally:
        shutdown()
