"""Shared fixtures: tiny configs and small real datasets, built once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def vader_dir(tmp_path_factory):
    """The real VADER ground truth, fetched through pip (package registry) into a temp cache."""
    from edge_clipguard.data.vader import prepare_vader

    out = tmp_path_factory.mktemp("vader")
    prepare_vader(out, seed=0)
    return out


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory, vader_dir):
    from edge_clipguard.data.scenes import generate_scenes

    out = tmp_path_factory.mktemp("scenes")
    generate_scenes(out, count=12, seed=0, split="train", vader=vader_dir)
    generate_scenes(out, count=6, seed=0, split="test", vader=vader_dir)
    return out


@pytest.fixture()
def scenes_as_coco(scenes_dir):
    """``make(split, names)``: the rendered scenes of ``split`` as a COCO instances object (file_name relative to
    ``scenes_dir``, boxes [x, y, w, h], category id 10·(label+1) named ``names[label]``, categories listed out
    of id order) and the scene rows it came from."""
    from edge_clipguard.data.manifest import read_manifest
    from edge_clipguard.data.shapes import SHAPE_CLASSES

    def make(split="train", names=SHAPE_CLASSES):
        rows = read_manifest(scenes_dir / f"{split}.jsonl")
        images, annotations = [], []
        for i, row in enumerate(rows):
            images.append({"id": 100 + i, "file_name": str(row.image).removeprefix(f"{scenes_dir}/")})
            for (x1, y1, x2, y2), label in zip(row.boxes, row.labels):
                annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "category_id": 10 * (label + 1),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
        categories = [{"id": 10 * (c + 1), "name": name} for c, name in reversed(list(enumerate(names)))]
        return {"images": images, "annotations": annotations, "categories": categories}, rows

    return make


@pytest.fixture(scope="session")
def tiny_cfg():
    from edge_clipguard.config import load_config

    return load_config("tiny")


@pytest.fixture()
def tiny_model(tiny_cfg):
    import torch

    from edge_clipguard.model import build_model

    torch.manual_seed(0)
    return build_model(tiny_cfg).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_cfg):
    from edge_clipguard.text.tokenizer import default_tokenizer

    return default_tokenizer(tiny_cfg.text.max_length)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_cfg, tiny_tokenizer):
    """A checkpoint of the (untrained, seeded) tiny model, as `train` would write it."""
    import torch

    from edge_clipguard.model import build_model
    from edge_clipguard.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(path, model=model, model_cfg=tiny_cfg, tokenizer_json=tiny_tokenizer.to_str(),
                           step=0, epoch=0)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_checkpoint):
    """An fp32 bundle exported from ``tiny_checkpoint`` (no engine); treat it as read-only."""
    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest

    out = tmp_path_factory.mktemp("bundles") / "tiny_fp32"
    export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(out), engine="never"), log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def tiny_int8_bundle(tmp_path_factory, tiny_checkpoint, scenes_dir):
    """fp32 + fp16 + INT8 (+ the ORT CPU twin) bundle of the tiny checkpoint, PTQ-calibrated on 8 scene rows
    (read-only)."""
    from edge_clipguard.export.bundle_writer import export_bundle
    from edge_clipguard.export.types import ExportRequest

    out = tmp_path_factory.mktemp("bundles") / "tiny_int8"
    result = export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(out), int8=True, cpu_int8=True,
                                         fp16=True,
                                         calib=str(scenes_dir / "train.jsonl"), calib_samples=8,
                                         val_data=str(scenes_dir / "test.jsonl"), engine="never"),
                           log=lambda *_: None)
    return result


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory):
    """(private, public) PEM paths of a fresh P-256 key pair; tests using it skip without the [sign] extra."""
    pytest.importorskip("cryptography")
    from edge_clipguard.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory):
    """A second key pair: the 'another key' of the signature tests."""
    pytest.importorskip("cryptography")
    from edge_clipguard.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("other_keys"))


@pytest.fixture()
def signed_bundle(tiny_bundle, signing_keys, tmp_path):
    """A private copy of ``tiny_bundle``, signed with ``signing_keys`` (tests may change it)."""
    import shutil

    from edge_clipguard.signing import sign_bundle

    out = tmp_path / "signed_bundle"
    shutil.copytree(tiny_bundle, out)
    sign_bundle(out, signing_keys[0])
    return out


@pytest.fixture(scope="session", autouse=True)
def manifests_obey_the_published_schema():
    """Every manifest.json the tests make export or build-engine write is checked against the published JSON
    Schema as it is written (bundle.write_manifest writes through bundle.write_text_atomic)."""
    jsonschema = _optional("jsonschema")  # the [dev] extra; without it the suite runs unchecked
    if jsonschema is None:
        yield
        return
    import json

    from edge_clipguard import bundle
    from edge_clipguard.manifest_schema import manifest_json_schema

    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    real = bundle.write_text_atomic

    def checked(path, text, *args, **kwargs):
        if str(path).endswith(bundle.MANIFEST_NAME):
            validator.validate(json.loads(text))
        return real(path, text, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundle, "write_text_atomic", checked)
        yield


def _optional(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


@pytest.fixture(scope="session")
def wheel_dist(tmp_path_factory):
    """(folder, build log): ``python -m build`` of this checkout, an sdist and a wheel, built once per session."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("build")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # its notes are the shell's
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(root)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out, proc.stdout + proc.stderr


@pytest.fixture()
def schema2_bundle(tiny_bundle, tmp_path):
    """A copy of ``tiny_bundle`` as schema 2 wrote it: whole graphs only, no parts, no text_features."""
    import json
    import shutil

    old = tmp_path / "v2"
    shutil.copytree(tiny_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.update(schema_version=2, text_features=None)
    for art in manifest["artifacts"]:
        art.pop("parts")
    (old / "manifest.json").write_text(json.dumps(manifest))
    return old
