"""BERT-family text tower: pretrained MiniLM-L6 (``minilm``) or a small random BERT (``bert``).

``minilm`` keeps the first ``text.num_layers`` of MiniLM's six layers (``small`` keeps 3): the lower
layers with their pretrained weights are the usual cheap student start (DistilBERT, TinyBERT), and
``base`` (6) keeps them all.

Eager attention is forced so the exported graph is plain MatMul/Softmax (no SDPA kernels),
which both exporters and TensorRT handle; the pooler is dropped because fusion uses all tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import TextEncoderConfig
from ..text.tokenizer import minilm_dir

MINILM_VOCAB_SIZE = 30522


class TextTower(nn.Module):
    """input_ids, attention_mask int64 [B, L] -> token features float [B, L, hidden_size]."""

    def __init__(self, bert: nn.Module, hidden_size: int):
        super().__init__()
        self.bert = bert
        self.hidden_size = hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def build_text_tower(cfg: TextEncoderConfig, pretrained: bool = True) -> TextTower:
    """``pretrained=False`` builds the same architecture without reading weights (for restoring
    a checkpoint, which overwrites them anyway)."""
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    if cfg.kind == "minilm" and not pretrained:
        bert_cfg = BertConfig.from_pretrained(str(minilm_dir()), num_hidden_layers=cfg.num_layers)
        bert_cfg._attn_implementation = "eager"
        return TextTower(BertModel(bert_cfg, add_pooling_layer=False), bert_cfg.hidden_size)
    if cfg.kind == "minilm":
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # silence the "pooler weights not used" / "unused layers" notices
        hf_logging.disable_progress_bar()
        try:
            # num_hidden_layers below the file's: layers 0..n-1 load, the rest of the file is skipped.
            bert = BertModel.from_pretrained(str(minilm_dir()), add_pooling_layer=False,
                                             attn_implementation="eager", num_hidden_layers=cfg.num_layers)
        finally:
            hf_logging.set_verbosity(verbosity)
            hf_logging.enable_progress_bar()
        return TextTower(bert, bert.config.hidden_size)
    bert_cfg = BertConfig(
        vocab_size=MINILM_VOCAB_SIZE,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=max(64, cfg.max_length),
    )
    bert_cfg._attn_implementation = "eager"
    return TextTower(BertModel(bert_cfg, add_pooling_layer=False), cfg.hidden_size)
