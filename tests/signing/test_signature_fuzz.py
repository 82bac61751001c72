"""Fuzzing the signature reader: whatever bundle.sig holds, verify raises nothing but a one-line SignatureError."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("cryptography")

from edge_clipguard.errors import ClipGuardError  # noqa: E402
from edge_clipguard.signing import SIGNATURE_NAME, SignatureError, sign_bundle, verify_bundle  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=10)


@pytest.fixture(scope="module")
def signed(tiny_bundle, signing_keys, tmp_path_factory):
    """(bundle, its valid signature document) on a module-private copy."""
    out = tmp_path_factory.mktemp("sig_fuzz") / "bundle"
    shutil.copytree(tiny_bundle, out)
    sign_bundle(out, signing_keys[0])
    return out, json.loads((out / SIGNATURE_NAME).read_text())


@st.composite
def documents(draw, valid):
    """The valid signature with one part replaced by arbitrary JSON, or a payload that is arbitrary JSON."""
    doc = json.loads(json.dumps(valid))
    part = draw(st.sampled_from(["mediaType", "verificationMaterial", "dsseEnvelope", "payload", "payloadType",
                                 "signatures", "sig", "statement"]))
    envelope = doc["dsseEnvelope"]
    if part in ("mediaType", "verificationMaterial", "dsseEnvelope"):
        doc[part] = draw(JSON)
    elif part in ("payload", "payloadType", "signatures"):
        envelope[part] = draw(JSON)
    elif part == "sig":
        envelope["signatures"][0]["sig"] = base64.b64encode(draw(st.binary(max_size=80))).decode()
    else:
        envelope["payload"] = base64.b64encode(json.dumps(draw(JSON)).encode()).decode()
    return doc


@settings(max_examples=150, deadline=None)
@given(data=st.data())
@example(data=None)
def test_a_fuzzed_signature_raises_only_signature_errors(signed, signing_keys, data):
    bundle, valid = signed
    raw = b"[" * 100_000 if data is None else data.draw(st.one_of(
        st.binary(max_size=200), documents(valid).map(lambda d: json.dumps(d).encode())))
    (bundle / SIGNATURE_NAME).write_bytes(raw)
    try:
        verify_bundle(bundle, signing_keys[1])  # the key hint is optional: dropping it leaves a valid signature
    except ClipGuardError as exc:
        assert isinstance(exc, SignatureError) and "\n" not in str(exc)
