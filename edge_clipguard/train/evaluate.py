"""The one evaluation engine: run any model (PyTorch, ONNX Runtime, ...) over manifest rows and score it.

``predict_dataset`` feeds a ``ManifestDataset`` batch by batch to an ``Infer`` callable (numpy feed in,
the four graph outputs out) for PyTorch checkpoints (``torch_infer``); ``score_predictions`` gives score
metrics per VADER domain and COCO mAP by pycocotools, for these and for bundles run by the runtime
(``bundle_eval``: export's accuracy column and ``evaluate BUNDLE``). The benchmarks use both.

Detection is scored in letterboxed-input pixels (IoU does not change under the letterbox's
uniform scale and shift, so mAP is the same as in original pixels). The text-masked ablation runs the
same checkpoint with every text replaced by the empty string: if mAP stays up, the box head is not
reading the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ..config import ModelConfig
from ..contract import INPUT_NAMES
from ..data.manifest import Sample
from .metrics import coco_map, per_domain_metrics
from .predictions import Predictions

# numpy feed (contract input names) -> (score [B], boxes [B,K,4], confidences [B,K], labels [B,K])
Infer = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def torch_infer(model, device="cpu") -> Infer:
    """A ClipGuardFusion (float or fake-quant) as an Infer: in-graph decode, outputs as float32/int64 numpy."""
    import torch

    model.eval().to(device)

    @torch.no_grad()
    def infer(feed: dict[str, np.ndarray]):
        outs = model.decode(model(*(torch.from_numpy(feed[name]).to(device) for name in INPUT_NAMES)))
        return tuple(o.float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outs)

    return infer


def feed_batches(dataset, batch_size: int):
    """(numpy feed, ground truth per row) batch by batch, in dataset order."""
    import torch

    from ..data.dataset import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in loader:
        feed = {name: batch[name].numpy() for name in INPUT_NAMES}
        truth = [(b.numpy(), lab.numpy(), bool(h)) for b, lab, h in zip(batch["boxes"], batch["labels"],
                                                                         batch["has_image"])]
        yield feed, truth


def predict_dataset(infer: Infer, dataset, batch_size: int = 16) -> Predictions:
    """Run ``infer`` over every row of a ``ManifestDataset``."""
    scores, detections, truth = [], [], []
    for feed, batch_truth in feed_batches(dataset, batch_size):
        score, boxes, confidences, labels = infer(feed)
        scores.append(np.asarray(score, dtype=np.float64))
        detections.extend((boxes[i], confidences[i], labels[i]) for i in range(len(score)))
        truth.extend(batch_truth)
    return Predictions(np.concatenate(scores), detections, truth)


def detection_metrics(pred: Predictions, num_classes: int) -> dict:
    """mAP50 / mAP50-95 over the rows that have an image and at least one target box."""
    keep = [i for i, (boxes, _, has_image) in enumerate(pred.truth) if has_image and len(boxes)]
    result = coco_map([pred.truth[i][:2] for i in keep], [pred.detections[i] for i in keep], num_classes)
    return {**result, "images": len(keep)}


def score_predictions(pred: Predictions, samples: list[Sample], num_classes: int) -> dict:
    """{"score": metrics per domain and pooled, "detection": mAP} of predictions for ``samples`` (same order).
    Score metrics cover only the rows that have a score (imported detection rows have none)."""
    true_scores = np.asarray([np.nan if s.score is None else s.score for s in samples], dtype=np.float64)
    return {"score": per_domain_metrics(pred.scores, true_scores, [s.domain for s in samples]),
            "detection": detection_metrics(pred, num_classes)}


def evaluate_model(infer: Infer, samples: list[Sample], tokenizer, cfg: ModelConfig,
                   batch_size: int = 16) -> tuple[dict, Predictions]:
    """Run ``infer`` over manifest rows, preprocessed as ``cfg``'s model was trained, and score it;
    returns (metrics, predictions)."""
    from ..data.dataset import ManifestDataset

    pred = predict_dataset(infer, ManifestDataset(samples, tokenizer, cfg.image_size, cfg.resize), batch_size)
    return score_predictions(pred, samples, cfg.num_classes), pred


def evaluate_samples(model, tokenizer, samples: list[Sample], batch_size: int = 16, device="cpu") -> dict:
    """Full evaluation of one checkpoint on manifest rows, plus the text-masked ablation."""
    from .intervals import metric_intervals

    cfg = model.cfg
    infer = torch_infer(model, device)
    result, pred = evaluate_model(infer, samples, tokenizer, cfg, batch_size)
    truth = np.asarray([np.nan if s.score is None else s.score for s in samples], dtype=np.float64)
    result["ci95"] = metric_intervals(pred, truth, cfg.num_classes)
    # The ablation needs only the rows with an image: a text-only row with its text removed holds
    # nothing at all (blank image, empty text), so it would add cost and a constant score.
    with_image = [dataclasses.replace(s, text="") for s in samples if s.image is not None]
    if with_image:
        masked, _ = evaluate_model(infer, with_image, tokenizer, cfg, batch_size)
        result["text_masked"] = {"detection": masked["detection"], "score": masked["score"]["pooled"]}
    return result


def format_report(result: dict) -> str:
    """A small text table of an evaluation result."""
    lines = [f"{'domain':<10}{'n':>7}{'pearson':>10}{'mae':>8}{'r2':>8}"]
    for domain, m in result["score"].items():
        lines.append(f"{domain:<10}{m['n']:>7}{m['pearson']:>10.3f}{m['mae']:>8.3f}{m['r2']:>8.3f}")
    det = result["detection"]
    ci = result.get("ci95", {})
    band = f" [95 % CI {ci['map50'][0]:.3f}, {ci['map50'][1]:.3f}]" if "map50" in ci else ""
    lines.append(f"detection on {det['images']} images: mAP50 {det['map50']:.3f}{band}  mAP50-95 "
                 f"{det['map50_95']:.3f}")
    if "score_r" in ci:
        low, high = ci["score_r"]
        lines.append(f"pooled score r 95 % CI [{low:.3f}, {high:.3f}] ({ci['resamples']} bootstrap resamples)")
    if "text_masked" in result:
        masked = result["text_masked"]
        lines.append(f"text masked (ablation):  mAP50 {masked['detection']['map50']:.3f}  "
                     f"mAP50-95 {masked['detection']['map50_95']:.3f}  score r {masked['score']['pearson']:.3f}")
    return "\n".join(lines)
