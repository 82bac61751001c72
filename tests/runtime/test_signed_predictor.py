"""Predictor.load(verify_key=...) and predict/profile --verify-key: verify first, then load; refuse and load nothing.

Tests with a key skip without the [sign] extra (through the key fixtures); unsigned loading needs no extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edge_clipguard.cli import main
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime import predictor as predictor_module
from edge_clipguard.signing import SignatureError

IMAGE = np.random.default_rng(3).integers(0, 256, (40, 64, 3), dtype=np.uint8)


@pytest.fixture()
def reads(monkeypatch):
    """Records every manifest parse, bundle file read (by name) and backend start the Predictor makes."""
    from edge_clipguard.runtime import opened_bundle

    calls = []

    def spy(label, real):
        return lambda *args, **kwargs: calls.append(label) or real(*args, **kwargs)

    real_read = opened_bundle.OpenedBundle.read
    monkeypatch.setattr(opened_bundle, "parse_manifest", spy("manifest", opened_bundle.parse_manifest))
    monkeypatch.setattr(opened_bundle.OpenedBundle, "read", lambda self, name: calls.append(name)
                        or real_read(self, name))
    monkeypatch.setattr(predictor_module, "create_runner", spy("runner", predictor_module.create_runner))
    return calls


def test_a_signed_bundle_loads_with_its_key_and_predicts_as_unsigned(signed_bundle, tiny_bundle, signing_keys):
    with Predictor.load(signed_bundle, device="cpu", threads=1, verify_key=signing_keys[1]) as pred:
        signed = pred.predict("a red star", IMAGE)
    with Predictor.load(tiny_bundle, device="cpu", threads=1) as pred:
        unsigned = pred.predict("a red star", IMAGE)
    assert signed.to_dict() == unsigned.to_dict()


def test_a_changed_file_of_a_signed_bundle_is_refused_and_no_backend_starts(signed_bundle, signing_keys, reads):
    (signed_bundle / "tokenizer.json").write_text("{}")
    with pytest.raises(SignatureError, match=r"changed: tokenizer.json"):
        Predictor.load(signed_bundle, device="cpu", verify_key=signing_keys[1])
    assert "runner" not in reads


def test_a_changed_manifest_is_refused_before_it_is_parsed(signed_bundle, signing_keys, reads):
    manifest = signed_bundle / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"top_k"', '"top_k" ', 1))
    with pytest.raises(SignatureError, match=r"changed: manifest.json"):
        Predictor.load(signed_bundle, device="cpu", verify_key=signing_keys[1])
    assert reads == []


def test_an_unsigned_bundle_is_refused_when_a_key_is_asked_for(tiny_bundle, signing_keys, reads):
    with pytest.raises(SignatureError, match="not signed"):
        Predictor.load(tiny_bundle, device="cpu", verify_key=signing_keys[1])
    assert reads == []


def test_load_reads_only_the_manifest_the_tokenizer_and_the_chosen_artifact(tiny_int8_bundle, reads):
    with Predictor.load(tiny_int8_bundle.bundle, backend="onnxruntime", device="cpu", precision="fp32", threads=1):
        pass
    assert reads == ["manifest", "tokenizer.json", "runner", "model.fp32.text.onnx", "model.fp32.fusion.onnx"]


def test_load_of_the_whole_graph_reads_only_it(tiny_int8_bundle, reads):
    with Predictor.load(tiny_int8_bundle.bundle, backend="onnxruntime", device="cpu", precision="fp32", threads=1,
                        text_feature_cache_bytes=0):
        pass
    assert reads == ["manifest", "tokenizer.json", "runner", "model.fp32.onnx"]


def test_an_unsigned_bundle_loads_without_the_sign_extra(tiny_bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography -> ImportError
    with Predictor.load(tiny_bundle, device="cpu", threads=1) as pred:
        assert 0.0 <= pred.predict("a red star", IMAGE).score <= 10.0


def test_predict_verify_key_of_another_key_is_one_line_exit_2(signed_bundle, other_keys, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.fromarray(IMAGE).save(image)
    code = main(["predict", str(signed_bundle), "--text", "a red star", "--image", str(image), "--device", "cpu",
                 "--verify-key", str(other_keys[1])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith(f"edge-clipguard: error: {signed_bundle / 'bundle.sig'}: signed by another key")


def test_predict_verify_key_accepts_the_signed_bundle(signed_bundle, signing_keys, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.fromarray(IMAGE).save(image)
    code = main(["predict", str(signed_bundle), "--text", "a red star", "--image", str(image), "--device", "cpu",
                 "--verify-key", str(signing_keys[1])])
    assert code == 0 and "score:" in capsys.readouterr().out


def test_profile_verify_key_refuses_an_extra_file(signed_bundle, signing_keys, capsys):
    (signed_bundle / "model.int8.onnx").write_bytes(b"planted")
    code = main(["profile", str(signed_bundle), "--iters", "1", "--warmup", "0", "--verify-key", str(signing_keys[1])])
    assert code == 2
    assert "does not match its signature (extra: model.int8.onnx)" in capsys.readouterr().err
