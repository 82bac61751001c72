"""Bundle signatures: what they cover, and every way a bundle or its signature can fail to match."""

from __future__ import annotations

import base64
import json
import stat
import sys

import pytest

pytest.importorskip("cryptography")

from edge_clipguard.signing import (  # noqa: E402
    SIGNATURE_NAME,
    SignatureError,
    generate_keypair,
    key_id,
    load_public_key,
    sign_bundle,
    verify_bundle,
)
from edge_clipguard.signing.signature import _pae  # noqa: E402


def _statement(bundle):
    document = json.loads((bundle / SIGNATURE_NAME).read_text())
    return document, json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))


def _refused(bundle, public_key, match):
    with pytest.raises(SignatureError, match=match) as info:
        verify_bundle(bundle, public_key)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_keygen_writes_the_private_key_owner_only(tmp_path):
    private, public = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_replace_a_key_pair_without_force(tmp_path, signing_keys):
    private, public = generate_keypair(tmp_path)
    before = public.read_bytes()
    with pytest.raises(SignatureError, match="already exists; pass --force"):
        generate_keypair(tmp_path)
    assert public.read_bytes() == before
    generate_keypair(tmp_path, force=True)
    assert public.read_bytes() != before


def test_a_signed_bundle_verifies_with_its_public_key(signed_bundle, signing_keys):
    info = verify_bundle(signed_bundle, signing_keys[1])
    assert info.files == 5  # manifest, tokenizer, the fp32 graph and its two parts
    assert info.key_id == key_id(load_public_key(signing_keys[1]))


def test_the_signature_lists_the_manifest_and_every_file_but_itself(signed_bundle):
    document, statement = _statement(signed_bundle)
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == sorted(p.name for p in signed_bundle.iterdir() if p.name != SIGNATURE_NAME)
    assert "manifest.json" in names
    assert statement["predicate"]["serialization"]["ignore_paths"] == [SIGNATURE_NAME]
    assert statement["subject"][0]["name"] == signed_bundle.name


@pytest.mark.parametrize("name", ["manifest.json", "tokenizer.json", "model.fp32.onnx"])
def test_one_changed_byte_in_any_file_is_refused(signed_bundle, signing_keys, name):
    path = signed_bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _refused(signed_bundle, signing_keys[1], f"does not match its signature \\(changed: {name}\\)")


def test_a_missing_file_is_refused(signed_bundle, signing_keys):
    (signed_bundle / "tokenizer.json").unlink()
    _refused(signed_bundle, signing_keys[1], r"\(missing: tokenizer.json\)")


@pytest.mark.parametrize("name", ["notes.txt", ".hidden", "sub/dir/model.fp32.plan"])
def test_an_extra_file_anywhere_is_refused(signed_bundle, signing_keys, name):
    path = signed_bundle / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    _refused(signed_bundle, signing_keys[1], rf"\(extra: {name}\)")


def test_a_symbolic_link_in_the_bundle_is_refused(signed_bundle, signing_keys):
    (signed_bundle / "link.onnx").symlink_to(signed_bundle / "model.fp32.onnx")
    _refused(signed_bundle, signing_keys[1], "link.onnx: is a symbolic link")


def test_an_unsigned_bundle_is_refused(tiny_bundle, signing_keys):
    _refused(tiny_bundle, signing_keys[1], r"not signed \(bundle.sig is missing\)")


def test_another_public_key_is_refused(signed_bundle, other_keys):
    _refused(signed_bundle, other_keys[1], "signed by another key")


def test_a_signature_by_another_key_claiming_ours_is_refused(signed_bundle, signing_keys, other_keys):
    """An attacker adds a file, re-signs with their own key and copies our key id into the hint."""
    (signed_bundle / "payload.bin").write_bytes(b"evil")
    sign_bundle(signed_bundle, other_keys[0])
    document = json.loads((signed_bundle / SIGNATURE_NAME).read_text())
    document["verificationMaterial"]["publicKey"]["hint"] = key_id(load_public_key(signing_keys[1]))
    (signed_bundle / SIGNATURE_NAME).write_text(json.dumps(document))
    _refused(signed_bundle, signing_keys[1], "the signature does not verify with")


def test_an_edited_file_list_in_the_signature_is_refused(signed_bundle, signing_keys):
    """Changing a file and its digest in the signed statement, without the private key, breaks the signature."""
    document, statement = _statement(signed_bundle)
    (signed_bundle / "tokenizer.json").write_text("{}")
    import hashlib

    for resource in statement["predicate"]["resources"]:
        if resource["name"] == "tokenizer.json":
            resource["digest"] = hashlib.sha256(b"{}").hexdigest()
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (signed_bundle / SIGNATURE_NAME).write_text(json.dumps(document))
    _refused(signed_bundle, signing_keys[1], "the signature does not verify with")


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"mediaType": "x"}'])
def test_a_malformed_signature_file_is_refused(signed_bundle, signing_keys, content):
    (signed_bundle / SIGNATURE_NAME).write_text(content)
    _refused(signed_bundle, signing_keys[1], "not a readable bundle signature")


def test_a_private_key_is_refused_as_the_verify_key(signed_bundle, signing_keys):
    _refused(signed_bundle, signing_keys[0], "is a private key; verifying takes the public key")


def test_a_public_key_is_refused_as_the_signing_key(tiny_bundle, tmp_path, signing_keys):
    with pytest.raises(SignatureError, match="is a public key; signing needs the private key"):
        sign_bundle(tiny_bundle, signing_keys[1])
    assert not (tiny_bundle / SIGNATURE_NAME).exists()


def test_a_missing_key_file_is_refused(signed_bundle, tmp_path):
    _refused(signed_bundle, tmp_path / "nope.pem", "no such public key file")


def test_signing_refuses_a_bundle_whose_file_differs_from_its_manifest(signed_bundle, signing_keys):
    from edge_clipguard.bundle import IntegrityError

    (signed_bundle / SIGNATURE_NAME).unlink()
    (signed_bundle / "tokenizer.json").write_text("{}")
    with pytest.raises(IntegrityError, match="tokenizer.json: sha256 differs from the manifest's"):
        sign_bundle(signed_bundle, signing_keys[0])
    assert not (signed_bundle / SIGNATURE_NAME).exists()


def test_signing_again_after_a_change_makes_the_bundle_verify(signed_bundle, signing_keys):
    (signed_bundle / "notes.txt").write_text("release 3")
    sign_bundle(signed_bundle, signing_keys[0])
    assert verify_bundle(signed_bundle, signing_keys[1]).files == 6


def test_the_signature_is_ecdsa_over_the_dsse_encoding_of_the_statement(signed_bundle, signing_keys):
    """The format model-signing's key-based verifier reads: DSSE PAE of the in-toto payload, signed with ECDSA."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    document, _ = _statement(signed_bundle)
    envelope = document["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    assert _pae(payload).startswith(b"DSSEv1 28 application/vnd.in-toto+json ")
    load_public_key(signing_keys[1]).verify(base64.b64decode(envelope["signatures"][0]["sig"]), _pae(payload),
                                            ec.ECDSA(hashes.SHA256()))


def test_model_signing_verifies_our_signature(signed_bundle, signing_keys):
    """Interoperability with the OpenSSF library, where it is installed and importable."""
    try:
        from model_signing import verifying
    except ImportError as exc:
        pytest.skip(f"model_signing not importable: {exc}")
    verifying.Config().use_elliptic_key_verifier(public_key=signing_keys[1]).verify(
        signed_bundle, signed_bundle / SIGNATURE_NAME)


def test_without_cryptography_a_key_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography -> ImportError
    with pytest.raises(SignatureError, match=r"need the 'cryptography' package: pip install 'edge-clipguard\[sign\]'"):
        generate_keypair(tmp_path)
    assert list(tmp_path.iterdir()) == []
