"""Model config + artifacts -> the bundle ``Manifest`` (pure; no file I/O beyond hashing)."""

from __future__ import annotations

from pathlib import Path

from ..bundle import SCHEMA_VERSION, TOKENIZER_NAME, Artifact, Manifest, Preprocess, TensorSpec, sha256_file
from ..config import ModelConfig
from ..contract import (
    ATTENTION_MASK,
    BOXES,
    CONFIDENCES,
    IMAGE_MEAN,
    IMAGE_STD,
    INPUT_IDS,
    LABELS,
    LETTERBOX_FILL,
    PIXEL_VALUES,
    SCORE,
    SCORE_MAX,
    SCORE_MIN,
    TEXT_AXIS,
    TEXT_FEATURES,
    text_buckets,
)
from ..contract import BATCH_AXIS as BATCH


def graph_specs(cfg: ModelConfig) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output tensor specs of the exported graph for ``cfg`` (batch and text length are symbolic)."""
    size, k = cfg.image_size, cfg.heads.top_k
    inputs = (
        TensorSpec(INPUT_IDS, "int64", (BATCH, TEXT_AXIS)),
        TensorSpec(ATTENTION_MASK, "int64", (BATCH, TEXT_AXIS)),
        TensorSpec(PIXEL_VALUES, "float32", (BATCH, 3, size, size)),
    )
    outputs = (
        TensorSpec(SCORE, "float32", (BATCH,)),
        TensorSpec(BOXES, "float32", (BATCH, k, 4)),
        TensorSpec(CONFIDENCES, "float32", (BATCH, k)),
        TensorSpec(LABELS, "int64", (BATCH, k)),
    )
    return inputs, outputs


def build_manifest(cfg: ModelConfig, bundle_dir: str | Path, artifacts: list[Artifact],
                   versions: dict[str, str], package_version: str, feature_dim: int | None = None) -> Manifest:
    """Manifest for the files already written in ``bundle_dir`` (tokenizer + each artifact and its parts);
    ``feature_dim``: the width of the text features between the artifacts' parts, None when none is cut."""
    bundle_dir = Path(bundle_dir)
    inputs, outputs = graph_specs(cfg)
    names = [TOKENIZER_NAME, *(name for a in artifacts for name in a.member_files())]
    features = None if feature_dim is None else TensorSpec(TEXT_FEATURES, "float32", (BATCH, TEXT_AXIS, feature_dim))
    return Manifest(
        schema_version=SCHEMA_VERSION,
        package_version=package_version,
        config_name=cfg.name,
        class_names=tuple(cfg.heads.class_names),
        score_range=(SCORE_MIN, SCORE_MAX),
        top_k=cfg.heads.top_k,
        inputs=inputs,
        outputs=outputs,
        preprocess=Preprocess(
            image_size=cfg.image_size,
            mean=tuple(IMAGE_MEAN),
            std=tuple(IMAGE_STD),
            letterbox_fill=tuple(LETTERBOX_FILL),
            max_text_length=cfg.text.max_length,
            resize=cfg.resize,
            text_lengths=text_buckets(cfg.text.max_length),
        ),
        artifacts=tuple(artifacts),
        files={name: sha256_file(bundle_dir / name) for name in names},
        versions=dict(versions),
        text_features=features,
    )
