"""Manifest samples -> model-ready tensors (torch side of the data pipeline).

Images are read by the runtime's own loader (``edge_clipguard.image_io``: EXIF orientation, alpha
composited on the letterbox grey, 16-bit scaled, bomb guard) and letterboxed by the same functions
(``edge_clipguard.preprocess``), so training sees exactly what the device sees; target boxes are
mapped into the same letterboxed-input pixels. Text-only rows (VADER sentences) get
a blank image and ``has_image = False`` so they train the score head without box targets; rows
without a score (imported detection data) get ``has_score = False`` (and score 0, never read) so
they train the box heads only.
"""

from __future__ import annotations

import numpy as np
import torch

from ..contract import DEFAULT_RESIZE, LETTERBOX_FILL
from ..image_io import load_pixels
from ..preprocess import boxes_to_input, preprocess_image
from ..text.tokenizer import encode_texts
from .manifest import Sample


class ManifestDataset(torch.utils.data.Dataset):
    """Items: input_ids/attention_mask int64 [L], pixel_values float32 [3, S, S], score float32 [],
    boxes float32 [N, 4] (x1y1x2y2, input pixels), labels int64 [N], has_image bool [], has_score bool []."""

    def __init__(self, samples: list[Sample], tokenizer, image_size: int, resize: str = DEFAULT_RESIZE,
                 augment=None, seed: int = 0, class_names: tuple[str, ...] = ()):
        self.samples = list(samples)
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.resize = resize  # the model config's: training, calibration and evaluation feed its pixels
        # A training set's config.AugmentConfig (when enabled): see augment.py. ``epoch`` is set by the trainer
        # before each epoch's loader starts, so its workers' copies draw that epoch's augmentations.
        self.augment, self.text_augment = None, None
        if augment is not None and augment.enabled:
            from .augment import BoxAugment

            self.augment = BoxAugment(augment, LETTERBOX_FILL, seed)
        if augment is not None and augment.text:  # text_augment.py: words that carry no label, commas
            from .text_augment import TextAugment

            self.text_augment = TextAugment(augment, class_names, seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        raw_text = sample.text
        if self.text_augment is not None and raw_text:
            raw_text = self.text_augment(raw_text, self.epoch, index)
        text = encode_texts(self.tokenizer, [raw_text])
        if sample.image is None:
            pixels = np.zeros((3, self.image_size, self.image_size), dtype=np.float32)
            boxes = np.zeros((0, 4), dtype=np.float32)
        else:
            image = load_pixels(sample.image, target_size=self.image_size)  # as the runtime decodes it
            boxes, labels = np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4), np.asarray(sample.labels)
            if self.augment is None:
                pixels, lb = preprocess_image(image.array, self.image_size, resize=self.resize,
                                              full_size=image.full_size)
            else:  # in decoded pixels (a JPEG may decode at reduced scale), then letterboxed like any image
                height, width = image.array.shape[:2]
                full_w, full_h = image.full_size or (width, height)
                boxes = boxes * np.asarray([width / full_w, height / full_h] * 2, dtype=np.float32)
                array, boxes, labels = self.augment(image.array, boxes, labels, self.epoch, index)
                pixels, lb = preprocess_image(array, self.image_size, resize=self.resize)
            boxes = boxes_to_input(boxes, lb)
        return {
            "input_ids": torch.from_numpy(text.input_ids[0]),
            "attention_mask": torch.from_numpy(text.attention_mask[0]),
            "pixel_values": torch.from_numpy(pixels),
            "score": torch.tensor(0.0 if sample.score is None else sample.score, dtype=torch.float32),
            "boxes": torch.from_numpy(boxes.reshape(-1, 4)),
            "labels": torch.tensor(sample.labels if sample.image is None else labels, dtype=torch.int64),
            "has_image": torch.tensor(sample.image is not None),
            "has_score": torch.tensor(sample.score is not None),
        }


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    """Stack fixed-size fields; keep per-sample box/label tensors as lists (their counts differ)."""
    batch: dict[str, object] = {}
    for key in ("input_ids", "attention_mask", "pixel_values", "score", "has_image", "has_score"):
        batch[key] = torch.stack([item[key] for item in items])
    batch["boxes"] = [item["boxes"] for item in items]
    batch["labels"] = [item["labels"] for item in items]
    return batch
