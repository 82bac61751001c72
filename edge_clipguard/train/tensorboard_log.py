"""``train --tensorboard DIR``: the run's curves and pictures in TensorBoard, written by the main process only.

Per step: every loss term (``loss/<term>``, the weighted total as ``loss/total``), each parameter group's
gradient norm before clipping and the norm after it (``grad_norm/pre/<group>``, ``grad_norm/post``), the clip
threshold and whether the step clipped (``clip/threshold``, ``clip/clipped``), the learning rate and the
skipped steps. At each evaluation: the validation metrics (``eval/<metric>``) and a few validation scenes with
their true boxes (green), the predicted ones (red, with confidences) and the text (``eval/scenes``). The same
numbers go to ``steps.jsonl`` / ``epochs.jsonl``; TensorBoard is for watching the multi-task losses move together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

NOT_LOSS_TERMS = {"step", "epoch", "lr", "grad_norm_post", "clip_threshold", "clipped", "skipped", "skipped_total"}
SCENES_SHOWN = 4


class TensorBoardLog:
    def __init__(self, log_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch ships the writer; it needs the tensorboard package
            from ..errors import ClipGuardError

            raise ClipGuardError(f"--tensorboard needs the tensorboard package ({exc}): pip install tensorboard") \
                from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def step(self, row: dict) -> None:
        """One optimiser step's row of ``steps.jsonl``."""
        step, scalar = row["step"], self.writer.add_scalar
        for name, value in row.items():
            if name.startswith("grad_norm_") and name != "grad_norm_post":
                scalar(f"grad_norm/pre/{name.removeprefix('grad_norm_')}", value, step)
            elif name not in NOT_LOSS_TERMS and not name.startswith("grad_norm_"):
                scalar("loss/total" if name == "loss" else f"loss/{name}", value, step)
        scalar("grad_norm/post", row["grad_norm_post"], step)
        if row.get("clip_threshold") is not None:
            scalar("clip/threshold", row["clip_threshold"], step)
        scalar("clip/clipped", float(row["clipped"]), step)
        scalar("lr", row["lr"], step)
        scalar("skipped/total", row["skipped_total"], step)

    def evaluation(self, step: int, metrics: dict, scenes: list[np.ndarray]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"eval/{name.removeprefix('val_')}", value, step)
        if scenes:
            self.writer.add_images("eval/scenes", np.stack(scenes), step, dataformats="NHWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@torch.no_grad()
def annotated_scenes(model, batch: dict, mean, std, texts: list[str], count: int = SCENES_SHOWN,
                     min_confidence: float = 0.3) -> list[np.ndarray]:
    """Up to ``count`` validation scenes of ``batch`` as HxWx3 uint8: the letterboxed input, true boxes green,
    predicted boxes above ``min_confidence`` red with their confidence, the text on top."""
    rows = [i for i, has in enumerate(batch["has_image"]) if has][:count]
    if not rows:
        return []
    model.eval()
    _, boxes, confidences, _ = model.decode(model(batch["input_ids"][rows], batch["attention_mask"][rows],
                                                  batch["pixel_values"][rows]))
    pixels = batch["pixel_values"][rows].float().cpu().numpy().transpose(0, 2, 3, 1)
    pixels = np.clip((pixels * np.asarray(std) + np.asarray(mean)) * 255.0, 0, 255).astype(np.uint8)
    scenes = []
    for k, row in enumerate(rows):
        picture = Image.fromarray(np.ascontiguousarray(pixels[k]))
        draw = ImageDraw.Draw(picture)
        for box in batch["boxes"][row].cpu().numpy().reshape(-1, 4):
            draw.rectangle(box.tolist(), outline=(0, 220, 0), width=2)
        for box, confidence in zip(boxes[k].float().cpu().numpy(), confidences[k].float().cpu().numpy()):
            if confidence >= min_confidence:
                draw.rectangle(box.tolist(), outline=(230, 0, 0), width=1)
                draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{confidence:.2f}", fill=(230, 0, 0))
        draw.text((3, 3), texts[row][:60], fill=(255, 255, 255))
        scenes.append(np.asarray(picture))
    return scenes
