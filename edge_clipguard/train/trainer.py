"""The trainer: AdamW + warm-up/cosine, AMP, gradient accumulation, clipping, checkpoints, DDP.

One optimiser step = ``grad_accum`` micro-batches. Per step it logs the loss terms, the
pre-clip gradient norm of each modality group, the post-clip norm and whether it clipped; a step
whose loss or gradients are not finite is skipped and counted (``skipped``, ``skipped_total``), and
training goes on, unless ``max_skipped_in_row`` steps in a row were skipped: then the run is
diverging and stops with TrainingDiverged. Checkpoints go to ``out/last.pt`` (every epoch and at
the end) and ``out/best.pt`` (lowest validation loss), written atomically and fsynced, so a run
killed at any moment (even SIGKILL) leaves the previous checkpoint whole; ``resume=True`` continues
the same curve from ``out/last.pt`` and cuts the logs back to it (see ``benchmarks/bench_crash_resume.py``).

Optional extra terms, each passed in explicitly: ``distiller`` (train/distill.py: a frozen teacher's
soft targets) and ``domain_adapter`` with ``target_set`` (train/domain_adapt.py: MMD or DANN between
each training batch and a batch of unlabelled target rows). Validation reports the ground-truth
terms only, so runs with and without them compare on the same loss.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..contract import IMAGE_MEAN, IMAGE_STD
from ..errors import ClipGuardError
from ..quiet import third_party_noise
from .balance import balanced_weights, row_groups
from .checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from .clipping import ClipConfig, GradientClipper, modality_groups
from .loop import batch_forward, batch_losses, make_optimizer, step_limit, warmup_cosine
from .losses import DEFAULT_WEIGHTS, weighted_total
from .progress import StepProgress
from .run_dir import remove_stale_temp_files, trim_log
from .tensorboard_log import TensorBoardLog, annotated_scenes

AMP_MODES = ("auto", "bf16", "fp16", "off")


class TrainingDiverged(ClipGuardError):
    """Too many optimiser steps in a row had a non-finite loss or gradient."""


@dataclass(frozen=True)
class TrainerConfig:
    epochs: int | None = None  # None: as many as max_steps needs (one epoch when max_steps is 0 too)
    max_steps: int = 0  # 0: no step limit; alone, exactly this many optimiser steps
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-4
    tower_lr_scale: float = 0.1
    weight_decay: float = 0.05
    warmup_steps: int = 50
    amp: str = "auto"
    clip: ClipConfig = field(default_factory=ClipConfig)
    loss_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    infonce_weight: float = 0.0
    seed: int = 0
    num_workers: int = 0
    progress: bool = True
    # fp16 AMP skips a few steps in a row on its own while the GradScaler finds its scale (at most
    # ~16 halvings from 2**16), so the limit sits above that; 0 never stops.
    max_skipped_in_row: int = 25
    tensorboard: str | None = None  # a folder: TensorBoard event files of the run (main process only)
    balance: bool = False  # class-balanced sampling of the training rows (train/balance.py); one process only


def resolve_amp(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed). ``auto``: bf16 on GPUs that support
    it, fp16 on older GPUs, fp32 on CPU."""
    if mode not in AMP_MODES:
        raise ClipGuardError(f"--amp must be one of {AMP_MODES}, got {mode!r}")
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None, False
    if mode == "auto":
        return (torch.bfloat16, False) if torch.cuda.is_bf16_supported() else (torch.float16, True)
    if mode == "fp16" and device.type != "cuda":
        raise ClipGuardError("--amp fp16 needs a CUDA device; use bf16 or off on CPU")
    return (torch.bfloat16, False) if mode == "bf16" else (torch.float16, True)


def _to_device(batch: dict, device: torch.device) -> dict:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif isinstance(value, list):
            out[key] = [v.to(device) if isinstance(v, torch.Tensor) else v for v in value]
        else:
            out[key] = value
    return out


class Trainer:
    """Trains ``model`` on ``train_set``; evaluates the loss on ``val_set`` after every epoch."""

    def __init__(self, model, model_cfg, tokenizer_json: str, train_set, val_set, cfg: TrainerConfig,
                 out_dir: str | Path, device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1,
                 modelopt_state_fn=None, collate_fn=None, distiller=None, domain_adapter=None, target_set=None):
        from ..data.dataset import collate

        self.cfg = cfg
        self.model_cfg = model_cfg
        self.tokenizer_json = tokenizer_json
        self.out = Path(out_dir)
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        self.collate = collate_fn or collate
        self.train_set, self.val_set = train_set, val_set
        self.modelopt_state_fn = modelopt_state_fn
        self.model = model.to(self.device)
        self.amp_dtype, use_scaler = resolve_amp(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.optimizer = make_optimizer(self.model, cfg)
        self.distiller = distiller
        self.domain_adapter, self.target_set = domain_adapter, target_set
        if domain_adapter is not None:
            if target_set is None or len(target_set) < cfg.batch_size:
                raise ClipGuardError(f"train: domain adaptation needs at least {cfg.batch_size} target rows "
                                     f"(one batch), got {0 if target_set is None else len(target_set)}")
            adapter_params = list(domain_adapter.to(self.device).parameters())
            if adapter_params and world_size > 1:
                raise ClipGuardError("train: --domain-adapt dann is not supported under DDP (its domain classifier "
                                     "is not synchronised); use mmd or one process")
            if adapter_params:  # DANN's domain classifier learns at the new layers' rate
                self.optimizer.add_param_group({"params": adapter_params, "lr": cfg.lr})
        # Count the batches the loader really yields (drop_last; under DDP each rank's shard):
        # ceil(rows / (batch * world)) overcounts, and an empty loader would spin fit() forever.
        batches = len(self.loader(0))
        if batches < cfg.grad_accum:
            raise ClipGuardError(f"train: {len(train_set)} rows give {batches} full batch(es) of {cfg.batch_size} per "
                                 f"process (world size {world_size}), fewer than one step of {cfg.grad_accum}; "
                                 "lower --batch-size/--grad-accum or add data")
        self.steps, self.limit_reason = step_limit(cfg.epochs, cfg.max_steps, cfg.grad_accum, batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, self.steps))
        self.clipper = GradientClipper(cfg.clip, modality_groups(self.model))
        self.step, self.epoch, self.skipped, self.skipped_in_row = 0, 0, 0, 0
        self.best_val = math.inf
        self.wrapped = self.model
        if cfg.balance and world_size > 1:
            raise ClipGuardError("--balance samples on one process; run it without torchrun (DDP shards the rows "
                                 "with its own sampler)")
        if world_size > 1:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    # ----- data -------------------------------------------------------------------------------
    def loader(self, epoch: int, dataset=None, shuffle: bool = True):
        dataset = dataset or self.train_set
        if hasattr(dataset, "epoch"):  # a ManifestDataset: the epoch's augmentation draws (workers copy it now)
            dataset.epoch = epoch
        if self.world_size > 1 and shuffle:
            sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                                          shuffle=True, seed=self.cfg.seed, drop_last=True)
            sampler.set_epoch(epoch)
        elif shuffle and self.cfg.balance and dataset is self.train_set:
            generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
            weights = balanced_weights(row_groups(dataset.samples))
            sampler = torch.utils.data.WeightedRandomSampler(weights.tolist(), len(dataset), replacement=True,
                                                             generator=generator)
        elif shuffle:
            generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
            sampler = torch.utils.data.RandomSampler(dataset, generator=generator)
        else:
            sampler = torch.utils.data.SequentialSampler(dataset)
        # Its own generator: creating an iterator must not draw from the global RNG, or a resumed
        # run's dropout masks would drift from an uninterrupted run's.
        return torch.utils.data.DataLoader(dataset, batch_size=self.cfg.batch_size, sampler=sampler,
                                           collate_fn=self.collate, num_workers=self.cfg.num_workers,
                                           drop_last=shuffle, generator=torch.Generator().manual_seed(epoch))

    # ----- state ------------------------------------------------------------------------------
    def train_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "clipper": self.clipper.state_dict(),
                "skipped": self.skipped, "skipped_in_row": self.skipped_in_row, "best_val": self.best_val,
                "trainer_config": asdict(self.cfg),
                **({"domain_adapter": self.domain_adapter.state_dict()} if self.domain_adapter is not None else {})}

    def save(self, name: str, metrics: dict | None = None) -> None:
        if not self.is_main:
            return
        save_checkpoint(self.out / name, model=self.model, model_cfg=self.model_cfg,
                        tokenizer_json=self.tokenizer_json, step=self.step, epoch=self.epoch,
                        train_state=self.train_state(), metrics=metrics,
                        modelopt_state=self.modelopt_state_fn(self.model) if self.modelopt_state_fn else None)

    def resume(self) -> None:
        payload = load_checkpoint(self.out / "last.pt")
        self.model.load_state_dict(payload["model"])
        state = payload["train_state"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.clipper.load_state_dict(state["clipper"])
        self.skipped, self.best_val = state["skipped"], state["best_val"]
        self.skipped_in_row = state.get("skipped_in_row", 0)
        if self.domain_adapter is not None and "domain_adapter" in state:
            self.domain_adapter.load_state_dict(state["domain_adapter"])
        self.step, self.epoch = payload["step"], payload["epoch"]
        set_rng_state(payload["rng"])

    # ----- one step ---------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, micro_batches: list[dict]) -> dict:
        """Accumulate gradients over the micro-batches, clip, and step (or skip if non-finite)."""
        self.wrapped.train()
        self.optimizer.zero_grad(set_to_none=True)
        # Batch-norm statistics move during the forward; a skipped step must not keep them
        # (one NaN batch would otherwise poison the running means for good).
        buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        sums: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            batch = _to_device(batch, self.device)
            sync = i == len(micro_batches) - 1 or self.world_size == 1
            ctx = contextlib.nullcontext() if sync else self.wrapped.no_sync()
            with ctx:
                with self._autocast():
                    raw, terms = batch_forward(self.wrapped, batch, with_infonce=self.cfg.infonce_weight > 0)
                    terms.update(self._extra_terms(raw, batch))
                weights = {**self.cfg.loss_weights, "infonce": self.cfg.infonce_weight}
                loss = weighted_total(terms, weights) / len(micro_batches)
                self.scaler.scale(loss).backward()
            for name, value in {**terms, "loss": loss * len(micro_batches)}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(micro_batches)
        self.scaler.unscale_(self.optimizer)
        report = self.clipper()
        finite = self._all_finite(report.finite and math.isfinite(sums["loss"]))
        if finite:
            self.scaler.step(self.optimizer)
            self.skipped_in_row = 0
        else:
            self.skipped += 1
            self.skipped_in_row += 1
            with torch.no_grad():
                for name, b in self.model.named_buffers():
                    b.copy_(buffers[name])
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        # A skipped step leaves the optimizer unstepped on purpose and the schedule moves on; torch
        # warns about that order (it thinks the first LR value is lost), which is not so here.
        with third_party_noise(messages=(r"Detected call of `lr_scheduler.step\(\)` before",)):
            self.scheduler.step()
        self.step += 1
        return {"step": self.step, "epoch": self.epoch, "lr": lr, **sums,
                **{f"grad_norm_{k}": v for k, v in report.pre_norms.items()}, "grad_norm_post": report.post_norm,
                "clip_threshold": report.threshold, "clipped": report.clipped, "skipped": not finite,
                "skipped_total": self.skipped}

    def _extra_terms(self, raw: dict, batch: dict) -> dict:
        """Distillation and domain-adaptation terms of one micro-batch (none when not configured)."""
        terms = {}
        if self.distiller is not None:
            terms.update(self.distiller.terms(raw, batch))
        if self.domain_adapter is not None:
            target = _to_device(self._target_batch(), self.device)
            target_raw = self.wrapped(target["input_ids"], target["attention_mask"], target["pixel_values"])
            terms["domain"] = self.domain_adapter.loss(raw["fused_text_embed"], target_raw["fused_text_embed"],
                                                       progress=self.step / max(1, self.steps))
        return terms

    def _target_batch(self) -> dict:
        """The target rows of this step and rank: a seeded permutation per pass over the target set, a
        function of the step alone, so a resumed run draws the same target batches."""
        size = self.cfg.batch_size
        per_pass = len(self.target_set) // (size * self.world_size)
        draw = self.step * self.world_size + self.rank
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + 7919 * (draw // per_pass) + 1)
        order = torch.randperm(len(self.target_set), generator=generator)
        start = (draw % per_pass) * size
        return self.collate([self.target_set[int(i)] for i in order[start:start + size]])

    def _all_finite(self, finite: bool) -> bool:
        """Whether every process saw a finite loss and gradient (so all ranks skip or step together)."""
        if self.world_size == 1:
            return finite
        flag = torch.tensor(float(finite), device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def _check_diverging(self) -> None:
        limit = self.cfg.max_skipped_in_row
        if limit and self.skipped_in_row >= limit:
            raise TrainingDiverged(
                f"train: stopped at step {self.step}: the last {self.skipped_in_row} optimiser steps all had a "
                f"non-finite loss or gradient ({self.skipped} skipped in all, see 'skipped' in "
                f"{self.out / 'steps.jsonl'}); lower --lr, keep --clip on or check the data; "
                f"the last checkpoint, if any, is {self.out / 'last.pt'}")

    # ----- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        totals: dict[str, float] = {}
        count = 0
        for batch in self.loader(0, self.val_set, shuffle=False):
            batch = _to_device(batch, self.device)
            with self._autocast():
                terms = batch_losses(self.model, batch)
            n = len(batch["score"])
            for name, value in {**terms, "loss": weighted_total(terms, self.cfg.loss_weights)}.items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            count += n
        return {f"val_{k}": v / max(1, count) for k, v in totals.items()}

    def _annotated_scenes(self) -> list:
        """A few validation scenes with true and predicted boxes and their text, for TensorBoard."""
        batch = next(iter(self.loader(0, self.val_set, shuffle=False)), None)
        if batch is None:
            return []
        texts = [s.text for s in getattr(self.val_set, "samples", [])] or [""] * len(batch["score"])
        return annotated_scenes(self.model, _to_device(batch, self.device), IMAGE_MEAN, IMAGE_STD, texts)

    # ----- the loop ---------------------------------------------------------------------------
    def _log(self, name: str, row: dict) -> None:
        if self.is_main:
            with (self.out / name).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    def fit(self, resume: bool = False, stop_at: int | None = None) -> dict:
        """Train to the configured number of steps. ``resume`` continues from ``out/last.pt``;
        ``stop_at`` pauses early (saving ``last.pt``) without changing the schedule's length."""
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.cfg.seed)
        if self.is_main:
            remove_stale_temp_files(self.out)
        if resume:
            self.resume()
            if self.is_main:
                for name in ("steps.jsonl", "epochs.jsonl"):
                    trim_log(self.out / name, self.step)
        elif self.is_main:
            for name in ("steps.jsonl", "epochs.jsonl"):
                (self.out / name).unlink(missing_ok=True)
        started = time.perf_counter()
        bar = StepProgress(self.steps, self.step, "train", enabled=self.cfg.progress and self.is_main)
        self._tensorboard = TensorBoardLog(self.cfg.tensorboard) if self.cfg.tensorboard and self.is_main else None
        last_val: dict = {}
        end = min(self.steps, stop_at) if stop_at else self.steps
        while self.step < end:
            batches_done = (self.step * self.cfg.grad_accum) % max(1, len(self.loader(self.epoch)))
            pending: list[dict] = []
            for index, batch in enumerate(self.loader(self.epoch)):
                if index < batches_done:
                    continue  # resumed mid-epoch: these batches were already used
                pending.append(batch)
                if len(pending) < self.cfg.grad_accum:
                    continue
                row = self.train_step(pending)
                pending = []
                self._log("steps.jsonl", row)
                if self._tensorboard is not None:
                    self._tensorboard.step(row)
                self._check_diverging()
                bar.update(loss=f"{row['loss']:.3f}", clip="y" if row["clipped"] else "n")
                if self.step >= end:
                    break
            epoch_done = self.step % max(1, len(self.loader(self.epoch)) // self.cfg.grad_accum) == 0
            if epoch_done or self.step >= self.steps:
                last_val = self._end_of_epoch()
            elif self.step >= end:
                self.save("last.pt")
        bar.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
        return {"steps": self.step, "epochs": self.epoch, "skipped_steps": self.skipped,
                "best_val_loss": self.best_val, "seconds": round(time.perf_counter() - started, 1), **last_val}

    def _end_of_epoch(self) -> dict:
        val = self.validate() if self.is_main else {}
        self.epoch += 1
        if self.is_main:
            self._log("epochs.jsonl", {"epoch": self.epoch, "step": self.step, **val})
            if getattr(self, "_tensorboard", None) is not None:
                self._tensorboard.evaluation(self.step, val, self._annotated_scenes())
            if val.get("val_loss", math.inf) < self.best_val:
                self.best_val = val["val_loss"]
                self.save("best.pt", metrics=val)
            self.save("last.pt", metrics=val)
            from .plots import plot_curves

            plot_curves(self.out)
        if self.world_size > 1:
            torch.distributed.barrier()
        return val
