"""keygen, sign and verify on the command line: exit 0 with what was done, or one line and exit 2."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("cryptography")

from edge_clipguard.cli import main  # noqa: E402


def test_keygen_sign_verify_round_trip(tiny_bundle, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["keygen", "--out", str(tmp_path / "keys")]) == 0
    assert main(["sign", str(bundle), "--key", str(tmp_path / "keys" / "private_key.pem")]) == 0
    assert main(["verify", str(bundle), "--key", str(tmp_path / "keys" / "public_key.pem")]) == 0
    out = capsys.readouterr().out
    assert f"signed: {bundle / 'bundle.sig'} (5 files, key id " in out
    assert f"verified: {bundle} (5 files, key id " in out


def test_verify_of_a_changed_bundle_is_one_line_and_exit_2(signed_bundle, signing_keys, capsys):
    (signed_bundle / "model.fp32.onnx").write_bytes(b"not the model")
    assert main(["verify", str(signed_bundle), "--key", str(signing_keys[1])]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"edge-clipguard: error: {signed_bundle}: does not match its signature "
                   "(changed: model.fp32.onnx)")


def test_verify_of_an_unsigned_bundle_is_exit_2(tiny_bundle, signing_keys, capsys):
    assert main(["verify", str(tiny_bundle), "--key", str(signing_keys[1])]) == 2
    assert "not signed (bundle.sig is missing)" in capsys.readouterr().err
