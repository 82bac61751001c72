"""Evaluate a model on manifests: score metrics per VADER domain, COCO mAP, and the text-masked ablation.

Detection is scored in letterboxed-input pixels (IoU does not change under the letterbox's
uniform scale and shift, so mAP is the same as in original pixels). The ablation runs the same
checkpoint with every text replaced by the empty string: if mAP stays up, the box head is not
reading the text.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..data.dataset import ManifestDataset, collate
from ..data.manifest import Sample
from .metrics import coco_map, per_domain_metrics


@torch.no_grad()
def predict_dataset(model, dataset: ManifestDataset, batch_size: int = 16, device: str | torch.device = "cpu"):
    """Returns (scores [N], list of (boxes, confidences, labels) per sample, ground truth per sample)."""
    model.eval().to(device)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    scores, detections, truth = [], [], []
    for batch in loader:
        score, boxes, confidences, labels = model.decode(model(batch["input_ids"].to(device),
                                                               batch["attention_mask"].to(device),
                                                               batch["pixel_values"].to(device)))
        scores.append(score.float().cpu().numpy())
        for i in range(len(score)):
            detections.append((boxes[i].float().cpu().numpy(), confidences[i].float().cpu().numpy(),
                               labels[i].cpu().numpy()))
            truth.append((batch["boxes"][i].numpy(), batch["labels"][i].numpy(), bool(batch["has_image"][i])))
    return np.concatenate(scores), detections, truth


def _detection(detections, truth, num_classes: int) -> dict:
    keep = [i for i, (boxes, _, has_image) in enumerate(truth) if has_image and len(boxes)]
    result = coco_map([truth[i][:2] for i in keep], [detections[i] for i in keep], num_classes)
    return {**result, "images": len(keep)}


def evaluate_samples(model, tokenizer, samples: list[Sample], batch_size: int = 16, device="cpu") -> dict:
    """Full evaluation of one model on manifest rows (scenes and/or text-only VADER rows)."""
    cfg = model.cfg
    dataset = ManifestDataset(samples, tokenizer, cfg.image_size)
    scores, detections, truth = predict_dataset(model, dataset, batch_size, device)
    true_scores = np.asarray([s.score for s in samples])
    domains = [s.domain for s in samples]
    result = {"score": per_domain_metrics(scores, true_scores, domains),
              "detection": _detection(detections, truth, cfg.num_classes)}
    # The ablation needs only the rows with an image: a text-only row with its text removed holds
    # nothing at all (blank image, empty text), so it would add cost and a constant score.
    with_image = [s for s in samples if s.image is not None]
    if with_image:
        masked = ManifestDataset([dataclasses.replace(s, text="") for s in with_image], tokenizer, cfg.image_size)
        m_scores, m_detections, m_truth = predict_dataset(model, masked, batch_size, device)
        result["text_masked"] = {"detection": _detection(m_detections, m_truth, cfg.num_classes),
                                 "score": per_domain_metrics(m_scores, np.asarray([s.score for s in with_image]),
                                                             [s.domain for s in with_image])["pooled"]}
    return result


def format_report(result: dict) -> str:
    """A small text table of an evaluation result."""
    lines = [f"{'domain':<10}{'n':>7}{'pearson':>10}{'mae':>8}{'r2':>8}"]
    for domain, m in result["score"].items():
        lines.append(f"{domain:<10}{m['n']:>7}{m['pearson']:>10.3f}{m['mae']:>8.3f}{m['r2']:>8.3f}")
    det = result["detection"]
    lines.append(f"detection on {det['images']} images: mAP50 {det['map50']:.3f}  mAP50-95 {det['map50_95']:.3f}")
    if "text_masked" in result:
        masked = result["text_masked"]
        lines.append(f"text masked (ablation):  mAP50 {masked['detection']['map50']:.3f}  "
                     f"mAP50-95 {masked['detection']['map50_95']:.3f}  score r {masked['score']['pearson']:.3f}")
    return "\n".join(lines)
