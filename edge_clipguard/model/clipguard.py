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
from torch import nn

from ..config import ModelConfig
from .decode import decode_boxes
from .fusion import CrossAttentionFusion
from .heads import BoxHead, ScoreHead
from .image_tower import FEATURE_STRIDES, build_image_tower
from .text_tower import build_text_tower

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
        for level, side in enumerate(self.grid_sizes):
            self.register_buffer(f"pos_{level}", sincos_positions(side, side, dim)[None], persistent=False)
        self.fusion = CrossAttentionFusion(dim, cfg.fusion.num_layers, cfg.fusion.num_heads, cfg.fusion.ffn_multiplier)
        self.score_head = ScoreHead(dim, cfg.heads.score_hidden)
        self.box_head = BoxHead(dim, cfg.heads.box_channels, cfg.num_classes)

    def image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, S, S] -> tokens [B, sum(side^2), D] (levels concatenated, stride 8 first)."""
        tokens = []
        for level, (proj, fmap) in enumerate(zip(self.image_proj, self.image_tower(pixel_values))):
            t = proj(fmap).flatten(2).transpose(1, 2)
            tokens.append(t + getattr(self, f"pos_{level}") + self.level_embed[level])
        return torch.cat(tokens, dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs for training: score [B]; heatmap [B, C, S/8, S/8] logits; log_size and
        offset [B, 2, S/8, S/8] in stride-8 cells; text_embed, image_embed [B, D] (pre-fusion
        pooled tokens, for the optional InfoNCE alignment term)."""
        text = self.text_proj(self.text_tower(input_ids, attention_mask))
        image = self.image_tokens(pixel_values)
        mask = attention_mask.to(text.dtype)[..., None]
        text_embed = (text * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        image_embed = image.mean(1)
        image, text = self.fusion(image, text, attention_mask)
        maps, start = [], 0
        for side in self.grid_sizes:
            chunk = image[:, start:start + side * side]
            maps.append(chunk.transpose(1, 2).reshape(chunk.shape[0], -1, side, side))
            start += side * side
        out = self.box_head(maps)
        out["score"] = self.score_head(text, attention_mask)
        out["text_embed"], out["image_embed"] = text_embed, image_embed
        return out

    def decode(self, raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Raw outputs -> (score [B], boxes [B, K, 4], confidences [B, K], labels [B, K])."""
        boxes, confidences, labels = decode_boxes(raw["heatmap"], raw["log_size"], raw["offset"], BOX_STRIDE,
                                                  self.cfg.heads.top_k)
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
    unless ``pretrained=False`` (restoring a checkpoint)."""
    return ClipGuardFusion(cfg, build_text_tower(cfg.text, pretrained), build_image_tower(cfg.image, pretrained))


def example_inputs(cfg: ModelConfig, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the model's shapes: ids in-vocab, masks with some padding, pixels ~N(0,1)."""
    g = torch.Generator().manual_seed(seed)
    length = cfg.text.max_length
    ids = torch.randint(1000, 29000, (batch, length), generator=g)
    lengths = torch.randint(3, length + 1, (batch,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).to(torch.int64)
    ids = ids * mask
    ids[:, 0] = 101  # [CLS]
    pixels = torch.randn(batch, 3, cfg.image_size, cfg.image_size, generator=g)
    return ids, mask, pixels
