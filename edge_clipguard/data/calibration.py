"""The INT8 calibration set: generate the committed one, and load any calibration manifest.

Why a generator of its own: the committed ``calibration_data/`` may hold only our own pixels and
words. Its scenes use procedural backgrounds (``procedural.py``) and the objects of
``shapes.py``; each row names its VADER sentence by id (``text_ref``) and the text is resolved
from the local VADER cache when read. Sentences come from the VADER *train* split, so the
held-out test sentences never reach calibration. Every row has an image: the exported graph
always takes one.

Run ``python -m edge_clipguard.data.calibration --out calibration_data`` to rebuild it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

from ..atomic import atomic_directory, write_text_atomic
from ..errors import DataError
from .manifest import Sample, write_manifest
from .scenes import SceneSpec, make_scene_sample
from .text_refs import load_manifest
from .vader import META_NAME, load_vader, prepare_vader

CALIB_MANIFEST = "calib.jsonl"
VAL_MANIFEST = "val.jsonl"
META_FILE = "calib.meta.json"  # how the set was made (seed, counts, spec): what regeneration needs
COMMITTED_DIR = "calibration_data"
DEFAULT_COUNT = 128  # ModelOpt/TensorRT guidance: a few hundred at most; max calibration saturates earlier
DEFAULT_VAL_COUNT = 32
DEFAULT_SEED = 2024
VADER_SPLIT_SEED = 0  # the split seed the calibration set's "train only" promise refers to
# Sides up to the base config's 320 px input, mixed aspect so the letterbox padding is exercised;
# palette PNGs keep 160 images near 2 MB.
CALIB_SPEC = SceneSpec(min_side=224, max_side=320, background="procedural", png_colors=256)


def calibration_sample(index: int, split: str, seed: int, sentences: list[Sample], image_path: Path,
                       spec: SceneSpec = CALIB_SPEC) -> Sample:
    """Row ``index`` of the calibration (``split="train"``) or validation (``"val"``) part, its PNG
    saved to ``image_path``. Depends only on (seed, split, index) and the sentence list."""
    sample = make_scene_sample(index, split, seed, sentences, image_path, spec, text_by_ref=True)
    prefix = "calib" if split == "train" else f"calib-{split}"
    return dataclasses.replace(sample, id=f"{prefix}:{index:06d}", text_id=None)


def _sentences(vader_dir: Path, split: str) -> list[Sample]:
    """VADER sentences of ``split`` from a cache prepared with the documented split seed."""
    meta_path = vader_dir / META_NAME
    seed = json.loads(meta_path.read_text(encoding="utf-8")).get("seed") if meta_path.is_file() else None
    if seed != VADER_SPLIT_SEED:
        raise DataError(f"{vader_dir}: the calibration set draws VADER {split} sentences of split seed "
                        f"{VADER_SPLIT_SEED}, but this cache was prepared with seed {seed}; "
                        f"use 'edge-clipguard data vader --out DIR --seed {VADER_SPLIT_SEED}'")
    return load_vader(vader_dir, split=split)


def make_calibration_set(out_dir: str | Path, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED,
                         vader_dir: str | Path | None = None, val_count: int = DEFAULT_VAL_COUNT) -> Path:
    """Write ``out_dir/calib.jsonl`` (``count`` rows, VADER train sentences), ``out_dir/val.jsonl``
    (``val_count`` rows, VADER val sentences; 0 writes none), ``out_dir/images/*.png`` and
    ``out_dir/calib.meta.json``. Other files in ``out_dir`` (its README) are kept. Returns the path
    of ``calib.jsonl``."""
    from ..paths import default_vader_dir

    if count < 1:
        raise DataError(f"--count must be >= 1, got {count}")
    if val_count < 0:
        raise DataError(f"--val-count must be >= 0, got {val_count}")
    vader_dir = Path(vader_dir) if vader_dir is not None else default_vader_dir()
    if not (vader_dir / META_NAME).is_file():
        prepare_vader(vader_dir, seed=VADER_SPLIT_SEED)
    parts = [("train", count, CALIB_MANIFEST, "calib"), ("val", val_count, VAL_MANIFEST, "val")]
    out_dir = Path(out_dir)
    final_images = out_dir / "images"
    rows: dict[str, list[Sample]] = {}
    with atomic_directory(final_images) as tmp_images:
        for split, n, manifest, stem in parts:
            if n == 0:
                continue
            sentences = _sentences(vader_dir, split)
            rows[manifest] = [
                dataclasses.replace(calibration_sample(i, split, seed, sentences, tmp_images / f"{stem}_{i:06d}.png"),
                                    image=str(final_images / f"{stem}_{i:06d}.png"))
                for i in range(n)
            ]
    for manifest, samples in rows.items():
        write_manifest(out_dir / manifest, samples)
    if not val_count:
        (out_dir / VAL_MANIFEST).unlink(missing_ok=True)  # a stale val split would not match the images
    meta = {"generator": "edge_clipguard.data.calibration", "seed": seed, "count": count, "val_count": val_count,
            "vader_split_seed": VADER_SPLIT_SEED, "spec": dataclasses.asdict(CALIB_SPEC)}
    write_text_atomic(out_dir / META_FILE, json.dumps(meta, indent=2) + "\n")
    return out_dir / CALIB_MANIFEST


def committed_calibration_dir(start: Path | None = None) -> Path:
    """The committed calibration set: package data ``edge_clipguard.calibration_data`` (inside the wheel; in an
    editable install, the checkout's ``calibration_data/``), else, for a source tree used without installing it,
    the first folder above this package that holds ``calibration_data/calib.jsonl``."""
    if start is None:
        try:
            spec = importlib.util.find_spec(f"edge_clipguard.{COMMITTED_DIR}")
        except (ImportError, ValueError):
            spec = None
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            if (Path(location) / CALIB_MANIFEST).is_file():
                return Path(location)
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        if (parent / COMMITTED_DIR / CALIB_MANIFEST).is_file():
            return parent / COMMITTED_DIR
    raise DataError(f"no committed {COMMITTED_DIR}/{CALIB_MANIFEST} found above {here.parent} (is the package "
                    f"installed from a checkout?); pass --calib DIR or --calib MANIFEST.jsonl")


def calibration_manifest(path: str | Path | None, name: str = CALIB_MANIFEST) -> Path:
    """The manifest file a calibration argument means: a file as is; a folder's ``name``, else its
    only ``*.jsonl``; None: the committed set's ``name``."""
    folder = committed_calibration_dir() if path is None else Path(path)
    if folder.is_file():
        return folder
    if not folder.is_dir():
        raise DataError(f"{folder}: calibration data not found (expected a folder or a .jsonl manifest)")
    if (folder / name).is_file():
        return folder / name
    found = sorted(folder.glob("*.jsonl"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{folder}: no calibration manifest (expected {name} or a single *.jsonl)")
    raise DataError(f"{folder}: {len(found)} manifests and no {name}; pass one of them: "
                    + ", ".join(p.name for p in found))


def load_calibration_samples(path: str | Path | None, num_classes: int | None = None,
                             name: str = CALIB_MANIFEST, vader_dir: str | Path | None = None) -> list[Sample]:
    """Calibration rows from a folder, a manifest, or (None) the committed set; every row must
    have an existing image. ``name="val.jsonl"`` reads a folder's validation part instead."""
    manifest = calibration_manifest(path, name)
    samples = load_manifest(manifest, num_classes, vader_dir=vader_dir)
    for number, sample in enumerate(samples, start=1):
        if sample.image is None:
            raise DataError(f"{manifest}: sample {number} has no image; every calibration row needs one "
                            "(the exported graph always takes an image)")
        if not Path(sample.image).is_file():
            raise DataError(f"{manifest}: sample {number}: image {sample.image} not found")
    return samples
