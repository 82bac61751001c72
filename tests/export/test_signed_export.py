"""export --sign-key and build-engine on a signed bundle: re-sign with the key, or leave a stale signature."""

from __future__ import annotations

import pytest

pytest.importorskip("cryptography")

from edge_clipguard.bundle import MANIFEST_NAME, Artifact, read_manifest, sha256_file, write_manifest  # noqa: E402
from edge_clipguard.export.bundle_writer import export_bundle  # noqa: E402
from edge_clipguard.export.engine_step import (  # noqa: E402
    build_engine_command,
    signature_after_rewrite,
    signing_key_for,
    updated_manifest,
)
from edge_clipguard.export.tensorrt_build import tensorrt_available  # noqa: E402
from edge_clipguard.export.types import BatchProfile, ExportRequest  # noqa: E402
from edge_clipguard.signing import SIGNATURE_NAME, SignatureError, verify_bundle  # noqa: E402


def _add_fake_engine(bundle):
    """What build-engine does to the bundle: a new plan file and a rewritten manifest.json listing it."""
    plan = bundle / "model.fp32.plan"
    plan.write_bytes(b"plan bytes")
    engine = Artifact(plan.name, "tensorrt-engine", "fp32", "tensorrt", None, {"source_onnx": "model.fp32.onnx"})
    write_manifest(bundle, updated_manifest(read_manifest(bundle), [engine], {plan.name: sha256_file(plan)}, "10.0"))


def test_export_with_a_sign_key_writes_a_bundle_that_verifies(tiny_checkpoint, signing_keys, tmp_path):
    out = tmp_path / "signed"
    result = export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(out), engine="never",
                                         sign_key=str(signing_keys[0])), log=lambda *_: None)
    assert verify_bundle(out, signing_keys[1]).files == 5  # manifest, tokenizer, the fp32 graph and its two parts
    assert f"signed: {out / SIGNATURE_NAME} (5 files, key id " in "\n".join(result.notes)


def test_export_with_a_public_key_as_sign_key_writes_nothing(tiny_checkpoint, signing_keys, tmp_path):
    with pytest.raises(SignatureError, match="is a public key"):
        export_bundle(ExportRequest(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "b"), engine="never",
                                    sign_key=str(signing_keys[1])), log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_build_engine_refuses_a_sign_key_that_did_not_sign_the_bundle(signed_bundle, other_keys):
    before = (signed_bundle / MANIFEST_NAME).read_bytes()
    with pytest.raises(SignatureError, match="signed by another key"):
        build_engine_command(signed_bundle, BatchProfile(), 1.0, ("fp32",), log=lambda *_: None,
                             sign_key=other_keys[0])
    assert (signed_bundle / MANIFEST_NAME).read_bytes() == before
    assert not list(signed_bundle.glob("*.plan"))


def test_build_engine_refuses_to_re_sign_files_changed_since_signing(signed_bundle, signing_keys):
    (signed_bundle / "tokenizer.json").write_text("{}")
    with pytest.raises(SignatureError, match="changed: tokenizer.json"):
        signing_key_for(signed_bundle, signing_keys[0])


def test_re_signing_after_the_engine_rewrite_verifies(signed_bundle, signing_keys):
    key = signing_key_for(signed_bundle, signing_keys[0])
    _add_fake_engine(signed_bundle)
    note = signature_after_rewrite(signed_bundle, key, was_signed=True)
    assert note == f"signed: {signed_bundle / SIGNATURE_NAME} (again, with the engines)"
    assert verify_bundle(signed_bundle, signing_keys[1]).files == 6


def test_without_a_key_the_engine_rewrite_leaves_a_stale_signature_verify_refuses(signed_bundle, signing_keys):
    _add_fake_engine(signed_bundle)
    note = signature_after_rewrite(signed_bundle, None, was_signed=True)
    assert note.startswith(f"warning: {signed_bundle / SIGNATURE_NAME} is now stale")
    with pytest.raises(SignatureError, match=r"changed: manifest.json; extra: model.fp32.plan\) \(a bundle changed "
                                             r"after signing, e.g. by build-engine, must be signed again\)"):
        verify_bundle(signed_bundle, signing_keys[1])


def test_an_unsigned_bundle_gets_no_signature_note(tiny_bundle):
    assert signature_after_rewrite(tiny_bundle, None, was_signed=False) is None


def test_build_engine_with_sign_key_re_signs_the_real_engine(signed_bundle, signing_keys):
    pytest.importorskip("tensorrt")
    available, reason = tensorrt_available()
    if not available:
        pytest.skip(f"needs TensorRT and a GPU: {reason}")
    result = build_engine_command(signed_bundle, BatchProfile(1, 1, 2), 1.0, ("fp32",), log=lambda *_: None,
                                  sign_key=signing_keys[0])
    assert verify_bundle(signed_bundle, signing_keys[1]).files == 6
    assert any(n.startswith("signed: ") for n in result.notes)
