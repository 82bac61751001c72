"""Where the model looked for what the text asks: maps and token attributions for one (text, image).

Three pictures, all in the original image's pixels (the letterbox padding cut away, then resized back):
- ``heatmap``: the box head's heat map (sigmoid of the logits, 0-1 as the model says) for the referred
  class — the class the refer head reads from the text, unless one is given;
- ``cam_score`` / ``cam_detection``: Grad-CAM (Selvaraju et al. 2017) on the image tower's last stage
  (stride 32): channel weights = mean gradient of the score, or of the top detection's heat-map logit,
  times the activations, ReLU'd and scaled to [0, 1];
and per text token, gradient x input on the word embeddings for the score (sum over the hidden size):
positive tokens push the score up. Works on CPU for any config (tiny or base).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..preprocess import Letterbox, preprocess_image
from ..text.tokenizer import encode_texts
from .clipguard import BOX_STRIDE, ClipGuardFusion


@dataclass(frozen=True)
class Explanation:
    """Maps are float32 [height, width] of the original image, in [0, 1]; boxes x1,y1,x2,y2 original pixels."""

    text: str
    score: float
    class_index: int
    class_name: str
    heatmap: np.ndarray
    cam_score: np.ndarray
    cam_detection: np.ndarray
    detection: tuple[tuple[float, float, float, float], float] | None  # (box, confidence) of the top peak
    tokens: tuple[str, ...]
    token_attribution: np.ndarray  # [len(tokens)], gradient x input of the score


def to_original(grid: torch.Tensor, lb: Letterbox, size: int, rescale: bool = True) -> np.ndarray:
    """A [h, w] map over the square letterboxed input -> [height, width] of the original image; ``rescale``
    stretches it to [0, 1] (Grad-CAM has no units), else it is only clipped there (the heat map is one)."""
    square = F.interpolate(grid[None, None].float(), size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    x0, y0 = int(lb.pad_x), int(lb.pad_y)
    w, h = max(1, round(lb.width * lb.scale)), max(1, round(lb.height * lb.scale))
    crop = square[y0:y0 + h, x0:x0 + w]
    full = F.interpolate(crop[None, None], size=(lb.height, lb.width), mode="bilinear", align_corners=False)[0, 0]
    if not rescale:
        return full.clamp(0.0, 1.0).detach().numpy()
    low, high = float(full.min()), float(full.max())
    return ((full - low) / (high - low) if high > low else torch.zeros_like(full)).detach().numpy()


def grad_cam(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of one image: activation and gradient [1, C, h, w] -> ReLU(sum_c mean(grad_c) * A_c) [h, w]."""
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * activation).sum(dim=1))[0]


def explain(model: ClipGuardFusion, tokenizer, text: str, image: Image.Image,
            class_index: int | None = None) -> Explanation:
    """See the module docstring. ``image`` is an RGB PIL image as ``edge_clipguard.image_io`` returns it."""
    model.eval()
    cfg = model.cfg
    enc = encode_texts(tokenizer, [text])
    pixels, lb = preprocess_image(image, cfg.image_size, resize=cfg.resize)
    captured: dict[str, torch.Tensor] = {}

    def keep_stage(_module, _inputs, output):
        output[-1].retain_grad()
        captured["stage"] = output[-1]

    def keep_embeddings(_module, _inputs, output):
        output.retain_grad()
        captured["embeddings"] = output

    embeddings = model.text_tower.bert.get_input_embeddings()
    hooks = [model.image_tower.register_forward_hook(keep_stage), embeddings.register_forward_hook(keep_embeddings)]
    try:
        pixel_tensor = torch.from_numpy(pixels[None]).requires_grad_(True)  # gradients reach frozen stages too
        raw = model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask), pixel_tensor)
        refer = int(raw["refer_logits"][0].argmax()) if class_index is None else int(class_index)
        logits = raw["heatmap"][0, refer]
        peak = int(logits.flatten().argmax())
        model.zero_grad(set_to_none=True)
        raw["score"][0].backward(retain_graph=True)
        cam_score = grad_cam(captured["stage"].detach(), captured["stage"].grad.detach())
        attribution = (captured["embeddings"].grad * captured["embeddings"]).sum(-1)[0].detach()
        captured["stage"].grad = None
        logits.flatten()[peak].backward()
        cam_detection = grad_cam(captured["stage"].detach(), captured["stage"].grad.detach())
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        score, boxes, confidences, labels = model.decode({k: v.detach() for k, v in raw.items()})
    chosen = (labels[0] == refer).nonzero()
    detection = None
    if len(chosen):
        k = int(chosen[0])
        box = (boxes[0, k].numpy() - [lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y]) / lb.scale
        detection = (tuple(float(v) for v in box), float(confidences[0, k]))
    length = int(enc.attention_mask[0].sum())
    tokens = tuple(tokenizer.id_to_token(int(i)) for i in enc.input_ids[0, :length])
    side = cfg.image_size // BOX_STRIDE
    heat = torch.sigmoid(logits.detach()).reshape(side, side)
    names = cfg.heads.class_names
    return Explanation(text, float(score[0]), refer, names[refer] if refer < len(names) else f"class{refer}",
                       to_original(heat, lb, cfg.image_size, rescale=False), to_original(cam_score, lb, cfg.image_size),
                       to_original(cam_detection, lb, cfg.image_size), detection, tokens,
                       attribution[:length].numpy())
