"""ClipGuardFusion: the whole model, and the decoded wrapper that export uses.

Shapes (B batch, L = text.max_length, S = image_size, D = fusion.dim, C classes):
  input_ids, attention_mask int64 [B, L]; pixel_values float [B, 3, S, S]
  -> text tower [B, L, H] -> Linear -> [B, L, D]
  -> image tower: stride 8/16/32 maps -> 1x1 conv to D + 2-D sin-cos position + level embedding
     -> tokens [B, (S/8)^2 + (S/16)^2 + (S/32)^2, D]
  -> cross-attention fusion -> score head (text tokens) and box head (image tokens, stride 8).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .decode import decode_boxes
from .fusion import CrossAttentionFusion
from .heads import BoxHead, ReferHead, ScoreHead, masked_mean
from .image_tower import FEATURE_STRIDES, build_image_tower
from .text_tower import build_text_tower
from .widths import apply_widths

BOX_STRIDE = FEATURE_STRIDES[0]


def sincos_positions(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position codes [height * width, dim] (half for y, half for x)."""
    quarter = dim // 4
    freqs = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float32) / max(quarter, 1))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        angles = coord[:, None] * freqs[None, :]
        parts += [angles.sin(), angles.cos()]
    codes = torch.cat(parts, dim=1)
    return nn.functional.pad(codes, (0, dim - codes.shape[1]))


class ClipGuardFusion(nn.Module):
    """Text + image fusion model with a 0-10 score head and a dense box head."""

    def __init__(self, cfg: ModelConfig, text_tower: nn.Module, image_tower: nn.Module):
        super().__init__()
        self.cfg = cfg
        dim = cfg.fusion.dim
        self.text_tower = text_tower
        self.image_tower = image_tower
        self.text_proj = nn.Sequential(nn.Linear(text_tower.hidden_size, dim), nn.LayerNorm(dim))
        self.image_proj = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in image_tower.channels)
        self.level_embed = nn.Parameter(torch.zeros(len(FEATURE_STRIDES), dim))
        self.grid_sizes = tuple(cfg.image_size // s for s in FEATURE_STRIDES)
        self.fused_levels = tuple(i for i, s in enumerate(FEATURE_STRIDES) if s in cfg.fusion.image_strides)
        for level in self.fused_levels:
            side = self.grid_sizes[level]
            self.register_buffer(f"pos_{level}", sincos_positions(side, side, dim)[None], persistent=False)
        self.fusion = CrossAttentionFusion(dim, cfg.fusion.num_layers, cfg.fusion.num_heads, cfg.fusion.ffn_multiplier)
        self.score_head = ScoreHead(dim, cfg.heads.score_hidden)
        self.refer_head = ReferHead(dim, cfg.num_classes)
        self.box_head = BoxHead(dim, cfg.heads.box_channels, cfg.num_classes)

    def image_maps(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """pixels [B, 3, S, S] -> per level (stride 8 first) maps [B, D, side, side]."""
        return [proj(fmap) for proj, fmap in zip(self.image_proj, self.image_tower(pixel_values))]

    def image_tokens(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The fused levels' maps -> tokens [B, sum(side^2), D] with position and level codes."""
        return torch.cat([maps[level].flatten(2).transpose(1, 2) + getattr(self, f"pos_{level}")
                          + self.level_embed[level] for level in self.fused_levels], dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs for training: score [B]; refer_logits [B, C] (which classes the text asks
        for); heatmap [B, C, S/8, S/8] logits (the image's class evidence plus the text's
        log-probability of asking for that class); log_size and offset [B, 2, S/8, S/8] in stride-8
        cells; text_embed, image_embed [B, D] (pre-fusion pooled tokens, for the optional InfoNCE
        alignment term); fused_text_embed [B, D] (the fused text tokens' masked mean, what the score
        head reads: the features domain adaptation aligns)."""
        text = self.text_proj(self.text_tower(input_ids, attention_mask))
        maps = self.image_maps(pixel_values)
        image = self.image_tokens(maps)
        text_embed = masked_mean(text, attention_mask)
        image_embed = image.mean(1)
        image, text = self.fusion(image, text, attention_mask)
        start = 0
        for level in self.fused_levels:
            side = self.grid_sizes[level]
            chunk = image[:, start:start + side * side]
            maps[level] = chunk.transpose(1, 2).reshape(chunk.shape[0], -1, side, side)
            start += side * side
        out = self.box_head(maps)
        out["score"] = self.score_head(text, attention_mask)
        out["refer_logits"] = self.refer_head(text, attention_mask)
        out["heatmap"] = out["heatmap"] + F.logsigmoid(out["refer_logits"])[:, :, None, None]
        out["text_embed"], out["image_embed"] = text_embed, image_embed
        out["fused_text_embed"] = masked_mean(text, attention_mask)
        return out

    def decode(self, raw: dict[str, torch.Tensor], top_k: int | None = None,
               peaks_only: bool = True) -> tuple[torch.Tensor, ...]:
        """Raw outputs -> (score [B], boxes [B, K, 4], confidences [B, K], labels [B, K]); K is the
        config's ``top_k`` unless given (export's parity check decodes every cell, peak or not)."""
        boxes, confidences, labels = decode_boxes(raw["heatmap"], raw["log_size"], raw["offset"], BOX_STRIDE,
                                                  top_k or self.cfg.heads.top_k, peaks_only)
        return raw["score"], boxes, confidences, labels


class DecodedClipGuard(nn.Module):
    """The exported graph: inputs in ``contract.INPUT_NAMES`` order, outputs in ``OUTPUT_NAMES`` order."""

    def __init__(self, model: ClipGuardFusion):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.decode(self.model(input_ids, attention_mask, pixel_values))


def build_model(cfg: ModelConfig, pretrained: bool = True) -> ClipGuardFusion:
    """The only place that turns a config into modules. Towers load their pretrained weights here
    unless ``pretrained=False`` (restoring a checkpoint). A pruned config (``cfg.widths``) gets its narrower
    layers as zeros: its weights exist only in its checkpoint, so it never loads the pretrained files."""
    pretrained = pretrained and not cfg.pruned
    model = ClipGuardFusion(cfg, build_text_tower(cfg.text, pretrained), build_image_tower(cfg.image, pretrained))
    apply_widths(model, cfg.widths)
    # Convolutions in channels-last layout: EfficientNet's depthwise convs run ~3x faster forward
    # on CPU (oneDNN) and use tensor cores on GPU. Layout is not part of the ONNX graph.
    model.image_tower.to(memory_format=torch.channels_last)
    return model


def example_inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0,
                   length: int | None = None) -> tuple[torch.Tensor, ...]:
    """Random inputs of the model's shapes: ids in-vocab, masks with some padding, pixels ~N(0,1); the text axis
    is ``length`` long (default: the config's max_length; the exported graph takes any length up to it)."""
    g = torch.Generator().manual_seed(seed)
    length = length or cfg.text.max_length
    ids = torch.randint(1000, 29000, (batch, length), generator=g)
    lengths = torch.randint(min(3, length), length + 1, (batch,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).to(torch.int64)
    ids = ids * mask
    ids[:, 0] = 101  # [CLS]
    pixels = torch.randn(batch, 3, cfg.image_size, cfg.image_size, generator=g)
    return ids, mask, pixels
