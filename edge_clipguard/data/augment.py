"""Training-time image augmentation that moves the boxes with the pixels (albumentations).

Set in the config JSON's ``augment`` section (``AugmentConfig``; off unless ``enabled``). It runs in
``ManifestDataset`` after the image is decoded and before the letterbox the runtime shares, so training and
the device still see one image path; evaluation and calibration datasets never augment.

  * scale and crop: ``Affine`` zoom in 1-``max_zoom``x with a random shift (a random crop of the scene at the
    image's own size); boxes are clipped to the frame, and a box that keeps less than ``min_visibility`` of
    its area is dropped;
  * horizontal flip;
  * photometric jitter: brightness, contrast, saturation and hue.

The texts refer to one class and its boxes are every instance of it, so a crop that drops *all* of a row's
boxes would leave a text asking for an object the targets say is absent: such a draw is retried with the
next seed, and after ``ATTEMPTS`` the row keeps its geometry (flip and jitter only). Each draw is seeded by
(seed, epoch, row index), so an epoch's images are the same whatever the worker count, and a resumed run
sees what an uninterrupted one would have.
"""

from __future__ import annotations

import numpy as np

ATTEMPTS = 5


class BoxAugment:
    """``(image HxWx3 uint8, boxes [N,4] x1y1x2y2 pixels, labels [N]) -> the same, augmented``."""

    def __init__(self, cfg, fill: tuple[int, int, int], seed: int = 0):
        import albumentations as A
        import cv2

        boxes = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=cfg.min_visibility,
                             clip=True)
        photometric = [A.HorizontalFlip(p=cfg.flip_prob),
                       A.ColorJitter(brightness=cfg.jitter, contrast=cfg.jitter, saturation=cfg.jitter,
                                     hue=cfg.hue, p=cfg.jitter_prob)]
        geometric = A.Affine(scale=(1.0, cfg.max_zoom), translate_percent=(-cfg.max_shift, cfg.max_shift),
                             border_mode=cv2.BORDER_CONSTANT, fill=fill, p=cfg.crop_prob)
        self.full = A.Compose([geometric, *photometric], bbox_params=boxes, strict=True)
        self.photometric_only = A.Compose(photometric, bbox_params=boxes, strict=True)
        self.seed = seed

    def __call__(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, epoch: int,
                 index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        had_boxes = len(boxes) > 0
        for attempt in range(ATTEMPTS + 1):
            pipeline = self.full if attempt < ATTEMPTS else self.photometric_only
            pipeline.set_random_seed(draw_seed(self.seed, epoch, index, attempt))
            out = pipeline(image=image, bboxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                           labels=np.asarray(labels, dtype=np.int64))
            if len(out["bboxes"]) or not had_boxes:
                break
        return (out["image"], np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4),
                np.asarray(out["labels"], dtype=np.int64))


def draw_seed(seed: int, epoch: int, index: int, attempt: int) -> int:
    """One 32-bit seed per (run seed, epoch, row, attempt)."""
    return int(np.random.SeedSequence([seed, epoch, index, attempt]).generate_state(1)[0])
