"""Model architecture configs: JSON files loaded into frozen dataclasses.

Built-in configs live in ``edge_clipguard/configs/<name>.json`` (``tiny`` for tests,
``base`` for real use); a path to a user JSON file works too. Unknown or missing keys are
errors that name the file and the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .contract import DEFAULT_RESIZE, RESIZE_METHODS
from .errors import ConfigError

TEXT_ENCODER_KINDS = ("minilm", "bert")
MINILM_LAYERS = 6  # the pretrained file's depth; ``minilm`` may keep its first 1..6 layers
IMAGE_ENCODER_KINDS = ("efficientnet_lite0", "simple_cnn")
FEATURE_STRIDES = (8, 16, 32)  # the image tower's output levels
FROZEN_STRIDE_CHOICES = (0, 4, 8)
# Size attributes of the layer types pruning touches (torch's Conv/Linear/norms, our CrossAttention, Hugging
# Face's BertSelfAttention): the ones forward passes read, so a resized layer behaves like the pruned one.
SIZE_ATTRIBUTES = ("in_channels", "out_channels", "groups", "in_features", "out_features", "num_features",
                   "normalized_shape", "num_heads", "num_attention_heads", "all_head_size")


@dataclass(frozen=True)
class TextEncoderConfig:
    """BERT-family text tower. ``minilm`` loads pretrained MiniLM-L6 and keeps its first ``num_layers``
    layers (its other sizes are the file's); ``bert`` is randomly initialised with the sizes below (used
    by the ``tiny`` config). Both use the MiniLM WordPiece vocabulary."""

    kind: str = "minilm"
    max_length: int = 64
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536


@dataclass(frozen=True)
class ImageEncoderConfig:
    """CNN image tower returning stride-8/16/32 feature maps. ``efficientnet_lite0`` loads ImageNet
    weights when ``pretrained``; ``simple_cnn`` is a small conv stack with ``widths`` per stage."""

    kind: str = "efficientnet_lite0"
    pretrained: bool = True
    widths: tuple[int, ...] = (16, 32, 48, 64)
    # efficientnet_lite0 only: layers whose output stride is below this keep their ImageNet weights
    # (0: train all; 8: stem and stride-2/4 blocks, as detectron's freeze_at=2). Edges and blobs
    # need no retraining, and their backward is ~40% of the tower's training cost on a CPU.
    frozen_below_stride: int = 0


@dataclass(frozen=True)
class FusionConfig:
    """Bidirectional cross-attention between image tokens and text tokens. ``image_strides``: the
    feature levels whose tokens enter the fusion; the others go to the box head unfused (it adds
    the coarser, fused levels into them). Leaving stride 8 out cuts the fusion's tokens from
    (S/8)^2 + (S/16)^2 + (S/32)^2 to a quarter of that."""

    dim: int = 256
    num_layers: int = 2
    num_heads: int = 8
    ffn_multiplier: int = 4
    image_strides: tuple[int, ...] = (8, 16, 32)


@dataclass(frozen=True)
class HeadsConfig:
    """Score head (0-10 regression) and dense box head with in-graph top-K decode."""

    class_names: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
    top_k: int = 20
    score_hidden: int = 256
    box_channels: int = 128


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (``data.augment``, ``data.text_augment``), training set only.

    Images (off unless ``enabled``): an Affine zoom-in of up to ``max_zoom``x shifted by up to ``max_shift`` of
    the frame (with probability ``crop_prob``; boxes keeping less than ``min_visibility`` of their area are
    dropped), horizontal flips, and colour jitter. Texts (off unless ``text``): each word that carries neither
    the score nor the class is dropped with probability ``word_drop`` (at most ``max_drop_fraction`` of the
    words), and with probability ``punct_prob`` one comma or the final full stop is dropped or added."""

    enabled: bool = False
    crop_prob: float = 0.5
    max_zoom: float = 1.6
    max_shift: float = 0.15
    min_visibility: float = 0.4
    flip_prob: float = 0.5
    jitter: float = 0.3
    hue: float = 0.03
    jitter_prob: float = 0.8
    text: bool = False
    word_drop: float = 0.1
    max_drop_fraction: float = 0.25
    punct_prob: float = 0.3


@dataclass(frozen=True)
class ModelConfig:
    """Whole ClipGuard Fusion architecture; ``image_size`` is the square letterboxed input side, ``resize``
    the letterbox's resize method (``contract.RESIZE_METHODS``): part of what the weights learned."""

    name: str = "base"
    image_size: int = 320
    resize: str = DEFAULT_RESIZE
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Set by ``edge-clipguard prune``: the layers narrower than this config builds (``model.widths``); empty for
    # an unpruned model, and then left out of the JSON.
    widths: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.heads.class_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists), accepted back by ``config_from_dict``."""
        data = json.loads(json.dumps(dataclasses.asdict(self)))
        if not data["widths"]:
            del data["widths"]
        return data

    @property
    def pruned(self) -> bool:
        return bool(self.widths)


# Scalar field types of the config dataclasses: (does a JSON value fit, what the error says was expected).
# bool is an int in Python, so the numeric checks refuse it explicitly.
SCALARS: dict[type, tuple[Any, str]] = {
    bool: (lambda v: isinstance(v, bool), "true/false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    dict: (lambda v: isinstance(v, dict), "a JSON object"),
}


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively turn a JSON object into dataclass ``cls``; reject unknown keys and bad types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{where}.{key}"
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, path)
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, list):
                raise ConfigError(f"{path}: expected a list, got {value!r}")
            kwargs[key] = tuple(value)
        elif hint in SCALARS:
            accepts, expected = SCALARS[hint]
            if not accepts(value):
                raise ConfigError(f"{path}: expected {expected}, got {value!r}")
            kwargs[key] = float(value) if hint is float else value
        else:  # pragma: no cover - guards future field types
            raise ConfigError(f"{path}: unsupported field type {hint}")
    return cls(**kwargs)


def _validate(cfg: ModelConfig, where: str) -> ModelConfig:
    if cfg.text.kind not in TEXT_ENCODER_KINDS:
        raise ConfigError(f"{where}: text.kind must be one of {TEXT_ENCODER_KINDS}, got {cfg.text.kind!r}")
    if cfg.image.kind not in IMAGE_ENCODER_KINDS:
        raise ConfigError(f"{where}: image.kind must be one of {IMAGE_ENCODER_KINDS}, got {cfg.image.kind!r}")
    if cfg.image_size % 32 != 0 or cfg.image_size < 64:
        raise ConfigError(f"{where}: image_size must be a multiple of 32 and >= 64, got {cfg.image_size}")
    if cfg.resize not in RESIZE_METHODS:
        raise ConfigError(f"{where}: resize must be one of {list(RESIZE_METHODS)}, got {cfg.resize!r}")
    if cfg.fusion.dim % cfg.fusion.num_heads != 0:
        raise ConfigError(f"{where}: fusion.dim ({cfg.fusion.dim}) must divide by fusion.num_heads")
    if not cfg.heads.class_names:
        raise ConfigError(f"{where}: heads.class_names must name at least one class")
    strides = cfg.fusion.image_strides
    if not strides or any(s not in FEATURE_STRIDES for s in strides) or len(set(strides)) != len(strides):
        raise ConfigError(f"{where}: fusion.image_strides must be distinct values from {list(FEATURE_STRIDES)}, "
                          f"got {list(strides)}")
    if cfg.image.frozen_below_stride not in FROZEN_STRIDE_CHOICES:
        raise ConfigError(f"{where}: image.frozen_below_stride must be one of {list(FROZEN_STRIDE_CHOICES)}, "
                          f"got {cfg.image.frozen_below_stride}")
    if cfg.image.frozen_below_stride and cfg.image.kind != "efficientnet_lite0":
        raise ConfigError(f"{where}: image.frozen_below_stride needs image.kind efficientnet_lite0 "
                          f"(the only pretrained tower), got {cfg.image.kind!r}")
    if cfg.text.kind == "minilm" and not 1 <= cfg.text.num_layers <= MINILM_LAYERS:
        raise ConfigError(f"{where}: text.num_layers must be 1..{MINILM_LAYERS} for minilm (its first layers "
                          f"are kept), got {cfg.text.num_layers}")
    if cfg.text.max_length < 4:
        raise ConfigError(f"{where}: text.max_length must be >= 4, got {cfg.text.max_length}")
    if cfg.widths:
        check_widths(cfg.widths, f"{where}: widths")
    _check_augment(cfg.augment, where)
    return cfg


def config_from_dict(data: dict[str, Any], where: str = "config") -> ModelConfig:
    """Build and validate a ModelConfig from a parsed JSON object."""
    return _validate(_build(ModelConfig, data, where), where)


# train --augment: which parts of the config's augment section run (their settings stay the section's).
AUGMENT_CHOICES = ("off", "image", "text", "image+text")


def with_augment(cfg: ModelConfig, choice: str) -> ModelConfig:
    """``cfg`` with its image / text augmentation switched as ``choice`` (one of ``AUGMENT_CHOICES``) says."""
    if choice not in AUGMENT_CHOICES:
        raise ConfigError(f"--augment must be one of {list(AUGMENT_CHOICES)}, got {choice!r}")
    parts = set(choice.split("+"))
    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, enabled="image" in parts,
                                                                text="text" in parts))


def with_class_names(cfg: ModelConfig, class_names: tuple[str, ...], where: str = "class list") -> ModelConfig:
    """``cfg`` with another ``heads.class_names`` (``train --classes-from-data``: the data's own classes),
    validated like a config file's."""
    heads = dataclasses.replace(cfg.heads, class_names=tuple(class_names))
    return _validate(dataclasses.replace(cfg, heads=heads), where)


def builtin_config_names() -> list[str]:
    files = resources.files("edge_clipguard.configs").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".json"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load a built-in config by name (``tiny``, ``base``) or a JSON file by path."""
    text_name = str(name_or_path)
    if text_name in builtin_config_names():
        source = resources.files("edge_clipguard.configs") / f"{text_name}.json"
        where = f"config '{text_name}'"
    else:
        source = Path(text_name)
        where = str(source)
        if not source.is_file():
            raise ConfigError(
                f"{where}: no such config file; built-in configs are {builtin_config_names()}"
            )
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return config_from_dict(data, where)


def _check_augment(aug: AugmentConfig, where: str) -> None:
    for name in ("crop_prob", "flip_prob", "jitter_prob", "min_visibility", "word_drop", "max_drop_fraction",
                 "punct_prob"):
        if not 0.0 <= getattr(aug, name) <= 1.0:
            raise ConfigError(f"{where}: augment.{name} must be in [0, 1], got {getattr(aug, name)}")
    if aug.max_zoom < 1.0:
        raise ConfigError(f"{where}: augment.max_zoom must be >= 1 (1: no zoom), got {aug.max_zoom}")
    if not 0.0 <= aug.max_shift <= 0.5 or not 0.0 <= aug.hue <= 0.5 or aug.jitter < 0.0:
        raise ConfigError(f"{where}: augment.max_shift and augment.hue must be in [0, 0.5] and augment.jitter "
                          f">= 0, got {aug.max_shift}, {aug.hue}, {aug.jitter}")


def check_widths(widths: Any, where: str) -> None:
    """The shape of a ``widths`` record, checked before anything is resized."""
    if not isinstance(widths, dict) or set(widths) != {"layers", "tensors"}:
        raise ConfigError(f"{where}: expected an object with 'layers' and 'tensors'")
    layers, tensors = widths["layers"], widths["tensors"]
    if not isinstance(layers, dict) or not all(isinstance(a, dict) for a in layers.values()):
        raise ConfigError(f"{where}.layers: expected {{layer path: {{attribute: size}}}}")
    for path, attributes in layers.items():
        for name, value in attributes.items():
            sizes = value if isinstance(value, list) else [value]
            if name not in SIZE_ATTRIBUTES or not all(isinstance(v, int) and v > 0 for v in sizes):
                raise ConfigError(f"{where}.layers.{path}.{name}: expected a size attribute with positive "
                                  f"integer value(s), got {value!r}")
    for name, shape in tensors.items() if isinstance(tensors, dict) else [(None, None)]:
        if not isinstance(shape, list) or not all(isinstance(v, int) and v >= 0 for v in shape):
            raise ConfigError(f"{where}.tensors.{name}: expected a shape (list of sizes), got {shape!r}")
