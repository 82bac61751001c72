"""Bidirectional cross-attention: image tokens read the text, then text tokens read the image.

Attention is written with plain Linear + MatMul + Softmax (not nn.MultiheadAttention) so every
projection is an ``nn.Linear`` that quantizers see, the ONNX graph is the same for both
exporters, and the padding mask is an additive bias (finite, so fp16 never makes NaN).
"""

from __future__ import annotations

import math

import torch
from torch import nn

MASK_BIAS = -1.0e4


def padding_bias(attention_mask: torch.Tensor) -> torch.Tensor:
    """int mask [B, L] (1 = token) -> additive bias [B, 1, 1, L] (0 or MASK_BIAS)."""
    return (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * MASK_BIAS


class CrossAttention(nn.Module):
    """query [B, Nq, D] attends to context [B, Nk, D]; optional additive bias [B, 1, 1, Nk]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.softmax = nn.Softmax(dim=-1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """softmax(q kᵀ + bias) v over heads [B, H, N, d]. Its own method so INT8 QAT can swap in just this
        core with quantizers on the two matmuls' inputs (``train.quantize.attention_matmuls_quantized``)."""
        logits = torch.matmul(q, k.transpose(-1, -2))
        if bias is not None:
            logits = logits + bias.to(logits.dtype)
        return torch.matmul(self.softmax(logits), v)

    def forward(self, query: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        q = self._heads(self.q_proj(query)) * (1.0 / math.sqrt(self.head_dim))
        k = self._heads(self.k_proj(context))
        v = self._heads(self.v_proj(context))
        out = self.attend(q, k, v, bias)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


class FeedForward(nn.Module):
    def __init__(self, dim: int, multiplier: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * multiplier), nn.GELU(), nn.Linear(dim * multiplier, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FusionLayer(nn.Module):
    """One pre-norm layer: image<-text attention, text<-image attention, then an MLP on each."""

    def __init__(self, dim: int, num_heads: int, ffn_multiplier: int):
        super().__init__()
        self.image_norm = nn.LayerNorm(dim)
        self.text_norm = nn.LayerNorm(dim)
        self.image_from_text = CrossAttention(dim, num_heads)
        self.text_from_image = CrossAttention(dim, num_heads)
        self.image_ffn_norm = nn.LayerNorm(dim)
        self.text_ffn_norm = nn.LayerNorm(dim)
        self.image_ffn = FeedForward(dim, ffn_multiplier)
        self.text_ffn = FeedForward(dim, ffn_multiplier)

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
                text_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        text_in = self.text_norm(text_tokens)
        image_tokens = image_tokens + self.image_from_text(self.image_norm(image_tokens), text_in, text_bias)
        text_tokens = text_tokens + self.text_from_image(text_in, self.image_norm(image_tokens))
        image_tokens = image_tokens + self.image_ffn(self.image_ffn_norm(image_tokens))
        text_tokens = text_tokens + self.text_ffn(self.text_ffn_norm(text_tokens))
        return image_tokens, text_tokens


class CrossAttentionFusion(nn.Module):
    """A stack of FusionLayers. image [B, Ni, D], text [B, L, D], mask [B, L] -> same shapes."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, ffn_multiplier: int):
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(dim, num_heads, ffn_multiplier) for _ in range(num_layers))
        self.image_out_norm = nn.LayerNorm(dim)
        self.text_out_norm = nn.LayerNorm(dim)

    def forward(self, image_tokens: torch.Tensor, text_tokens: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bias = padding_bias(attention_mask)
        for layer in self.layers:
            image_tokens, text_tokens = layer(image_tokens, text_tokens, bias)
        return self.image_out_norm(image_tokens), self.text_out_norm(text_tokens)
