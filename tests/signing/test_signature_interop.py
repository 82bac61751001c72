"""Interop with the OpenSSF model-signing library, both directions, on golden signatures made once by each side
(tests/signing/golden/README.md): our reader accepts theirs, theirs accepts ours, a changed byte fails both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_clipguard.signing import SIGNATURE_NAME, SignatureError, verify_bundle

pytest.importorskip("cryptography")
GOLDEN = Path(__file__).resolve().parent / "golden"
PUBLIC_KEY = GOLDEN / "keys" / "public_key.pem"


def _signed_copy(tmp_path: Path, signature: str) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(GOLDEN / "bundle", bundle)
    shutil.copyfile(GOLDEN / signature, bundle / SIGNATURE_NAME)
    return bundle


def _model_signing_verifier():
    try:
        from model_signing import verifying
    except ImportError as exc:  # the [dev] extra installs it (with pyOpenSSL, which it needs but does not declare)
        pytest.skip(f"model_signing not importable: {exc}")
    return verifying.Config().use_elliptic_key_verifier(public_key=PUBLIC_KEY)


@pytest.mark.parametrize("signature", ["signed_by_model_signing.sig", "signed_by_edge_clipguard.sig"])
def test_we_verify_the_golden_signature(tmp_path, signature):
    info = verify_bundle(_signed_copy(tmp_path, signature), PUBLIC_KEY)
    assert info.files == 3


@pytest.mark.parametrize("signature", ["signed_by_edge_clipguard.sig", "signed_by_model_signing.sig"])
def test_model_signing_verifies_the_golden_signature(tmp_path, signature):
    bundle = _signed_copy(tmp_path, signature)
    _model_signing_verifier().verify(bundle, bundle / SIGNATURE_NAME)


def test_a_changed_byte_fails_both_verifiers(tmp_path):
    bundle = _signed_copy(tmp_path, "signed_by_model_signing.sig")
    (bundle / "model.fp32.onnx").write_bytes(b"not really onnx, changed\n")
    with pytest.raises(SignatureError, match=r"changed: model.fp32.onnx"):
        verify_bundle(bundle, PUBLIC_KEY)
    with pytest.raises(ValueError):
        _model_signing_verifier().verify(bundle, bundle / SIGNATURE_NAME)
