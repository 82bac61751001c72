"""serve's pieces that need no Triton: request parsing, output packing, batch errors, the libpython fix,
--verify-key pass-through, port checks. They run without the [serve] extra."""

from __future__ import annotations

import io
import shutil
import socket
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.runtime import serve as S
from edge_clipguard.runtime.errors import InputError, ServeError
from edge_clipguard.runtime.results import Detection, Result


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def column(*values) -> np.ndarray:
    return np.array([[v] for v in values], dtype=np.object_)


class FakeRequest:
    def __init__(self, texts, images):
        self.data = {S.TEXT: column(*texts), S.IMAGE: column(*images)}


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


def test_pack_results_pads_to_top_k_and_counts():
    det = Detection(box=(1.0, 2.0, 3.0, 4.0), label=3, class_name="star", confidence=0.9)
    out = S.pack_results([Result(7.5, (det, det), False, (10, 10)), Result(1.0, (), False, (5, 5))], top_k=3)
    assert out[S.ERROR][:, 0].tolist() == [b"", b""]
    assert out[S.SCORE].shape == (2, 1) and out[S.SCORE].dtype == np.float32
    assert out[S.BOXES].shape == (2, 3, 4) and out[S.LABELS].dtype == np.int64 and out[S.COUNT].dtype == np.int32
    assert out[S.COUNT][:, 0].tolist() == [2, 0]
    assert out[S.LABELS].tolist() == [[3, 3, -1], [-1, -1, -1]]
    assert out[S.BOXES][0, 1].tolist() == [1.0, 2.0, 3.0, 4.0] and not out[S.BOXES][1].any()


def test_request_items_takes_bytes_and_refuses_str_paths_and_bad_shapes(tmp_path):
    assert S.request_items({S.TEXT: column(b"hi"), S.IMAGE: column(np.bytes_(b"\x89PNG"))}) == [(b"hi", b"\x89PNG")]
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    with pytest.raises(InputError, match="image #0: expected BYTES, got str"):
        S.request_items({S.TEXT: column(b"hi"), S.IMAGE: column(str(secret))})
    with pytest.raises(InputError, match=r"input 'image' has shape \[1, 2\]"):
        S.request_items({S.TEXT: column(b"hi"), S.IMAGE: np.array([[b"a", b"b"]], dtype=np.object_)})
    with pytest.raises(InputError, match="2 texts but 1 images"):
        S.request_items({S.TEXT: column(b"a", b"b"), S.IMAGE: column(b"x")})
    with pytest.raises(InputError, match="input 'text' is missing"):
        S.request_items({S.IMAGE: column(b"x")})


def test_request_items_refuses_elements_above_their_size_limits(monkeypatch):
    with pytest.raises(InputError, match=r"text #1: 16,385 bytes is above the 16,384-byte limit for 'text'"):
        S.request_items({S.TEXT: column(b"ok", b"x" * (16 * 1024 + 1)), S.IMAGE: column(b"a", b"b")})
    from edge_clipguard.runtime import serve_codec

    monkeypatch.setattr(serve_codec, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(InputError, match=r"image #0: 101 bytes is above the 100-byte limit for 'image'"):
        S.request_items({S.TEXT: column(b"hi"), S.IMAGE: column(b"x" * 101)})


def test_batch_infer_equals_the_predictor_and_splits_per_request(predictor, images, pool):
    infer = S.BatchInfer(predictor, pool)
    data = [jpeg(im) for im in images]
    responses = infer([FakeRequest([b"About the stars: lovely."], [data[0]]),
                       FakeRequest([b"The red circle!", b"About the rings: meh."], [data[1], data[2]])])
    assert [r[S.SCORE].shape[0] for r in responses] == [1, 2]
    want = predictor.predict_batch(["About the stars: lovely.", "The red circle!", "About the rings: meh."], data)
    got = {k: np.concatenate([r[k] for r in responses]) for k in S.OUTPUT_NAMES}
    for name, value in S.pack_results(want, predictor.manifest.top_k).items():
        if name == S.ERROR:
            assert got[name].tolist() == value.tolist() == [[b""]] * 3
        else:
            np.testing.assert_allclose(got[name], value, atol=1e-4, err_msg=name)


def test_a_bad_request_batched_with_good_ones_is_answered_alone_and_fails_none(predictor, images, pool, tmp_path):
    infer = S.BatchInfer(predictor, pool)
    good = jpeg(images[0])
    path = tmp_path / "real.jpg"
    path.write_bytes(good)
    responses = infer([FakeRequest([b"ok text"], [good]), FakeRequest([b"ok"], [str(path).encode()]),
                       FakeRequest([b"  "], [good]), FakeRequest([b"About the stars."], [jpeg(images[1])])])
    errors = [r[S.ERROR][0, 0].decode() for r in responses]
    assert errors[0] == errors[3] == ""
    assert errors[1].startswith("image #0: not an image") and errors[2] == "text #0: is empty; the model scores a " \
        "text, give it at least one word"
    assert responses[1][S.COUNT][0, 0] == 0 and responses[1][S.SCORE][0, 0] == 0.0
    want = predictor.predict_batch(["ok text", "About the stars."], [good, jpeg(images[1])])
    assert [responses[0][S.SCORE][0, 0], responses[3][S.SCORE][0, 0]] == pytest.approx([w.score for w in want],
                                                                                         abs=1e-4)


def test_a_call_of_only_bad_requests_is_an_error_naming_each(predictor, images, pool):
    infer = S.BatchInfer(predictor, pool)
    good = jpeg(images[0])
    with pytest.raises(InputError) as err:
        infer([FakeRequest([b"ok"], [good[: len(good) // 3]]), FakeRequest([b" "], [good])])
    message = str(err.value)
    assert message.startswith("request 1 of 2: image #0: ") and "request 2 of 2: text #0: is empty" in message
    with pytest.raises(InputError, match=r"^image #0: corrupt image data|^image #0: not an image"):
        infer([FakeRequest([b"ok"], [good[: len(good) // 3]])])


def test_batch_infer_turns_a_backend_crash_into_the_unrecoverable_error(predictor, images, pool, monkeypatch):
    class Crash(Exception):
        pass

    infer = S.BatchInfer(predictor, pool, Crash)
    monkeypatch.setattr(predictor, "infer", lambda *a: (_ for _ in ()).throw(MemoryError("boom")))
    with pytest.raises(Crash, match="MemoryError: boom"):
        infer([FakeRequest([b"text"], [jpeg(images[0])])])


def test_use_own_libpython_puts_the_interpreters_libdir_first():
    lib = S.own_libpython()
    if not lib.is_file():
        pytest.skip(f"this interpreter has no shared libpython ({lib})")
    env = {"LD_LIBRARY_PATH": "/opt/other:/usr/lib"}
    note = S.use_own_libpython(env)
    assert env["LD_LIBRARY_PATH"] == f"{lib.parent}:/opt/other:/usr/lib" and str(lib.parent) in note
    S.use_own_libpython(env)  # idempotent
    assert env["LD_LIBRARY_PATH"].count(str(lib.parent)) == 1


def test_use_own_libpython_says_why_it_cannot(monkeypatch, tmp_path):
    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var",
                        lambda name: str(tmp_path) if name == "LIBDIR" else real(name))
    with pytest.raises(ServeError, match="no shared libpython.*--enable-shared"):
        S.use_own_libpython({})


def test_stub_libpython_reads_ldd(tmp_path, monkeypatch):
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    assert S.stub_libpython(tmp_path / "missing", {}) is None
    exe = Path(S.sys.executable).resolve()
    found = S.stub_libpython(exe, {"LD_LIBRARY_PATH": str(S.own_libpython().parent)})
    assert found is None or found.name.startswith("libpython")


def test_verify_key_checks_the_signature_before_any_instance_loads(signed_bundle, signing_keys, other_keys):
    from edge_clipguard.signing import SignatureError

    with pytest.raises(SignatureError):
        S.load_predictors(S.ServeConfig(str(signed_bundle), backend="onnxruntime", device="cpu", threads=1,
                                        verify_key=str(other_keys[1])))
    [predictor] = S.load_predictors(S.ServeConfig(str(signed_bundle), backend="onnxruntime", device="cpu",
                                                  threads=1, verify_key=str(signing_keys[1])))
    predictor.close()


def test_check_ports_free_names_the_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=f"--grpc-port {port}: cannot listen on 127.0.0.1:{port}"):
            S.check_ports_free("127.0.0.1", {"--grpc-port": port})


def test_serve_config_refuses_equal_ports_and_zero_batch():
    with pytest.raises(ServeError, match="must differ"):
        S.ServeConfig("b", http_port=9000, grpc_port=9000)
    with pytest.raises(ServeError, match="--max-batch must be >= 1"):
        S.ServeConfig("b", max_batch=0)


def test_importing_serve_and_the_cli_loads_neither_pytriton_nor_torch():
    import subprocess
    import sys

    code = ("import sys, edge_clipguard.runtime.cli, edge_clipguard.runtime.serve, edge_clipguard.runtime.triton_repo\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pytriton', 'tritonclient', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"




def _serve_config(bundle, free_ports, **overrides):
    http, grpc, metrics = free_ports(3)
    return S.ServeConfig(bundle=str(bundle), http_port=http, grpc_port=grpc, metrics_port=metrics, device="cpu",
                         backend="onnxruntime", threads=1, **overrides)


def test_a_stop_while_the_model_loads_ends_cleanly_and_never_says_ready(tiny_bundle, free_ports):
    import signal
    import threading

    pytest.importorskip("pytriton")
    before = signal.getsignal(signal.SIGTERM)
    stop, lines = threading.Event(), []
    real = S.load_predictors

    def load_then_ctrl_c(config):  # the signal arrives while the bundle loads
        predictors = real(config)
        stop.set()
        return predictors

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S, "load_predictors", load_then_ctrl_c)
        S.serve(_serve_config(tiny_bundle, free_ports), log=lines.append, stop_event=stop)
    assert not any("ready" in line for line in lines), lines
    assert "asked to stop while the model was loading" in lines[0] and lines[-1] == "stopped"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_failed_start_restores_the_signal_handlers(tmp_path, free_ports):
    import signal

    from edge_clipguard.errors import ClipGuardError

    pytest.importorskip("pytriton")
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(ClipGuardError):
        S.serve(_serve_config(tmp_path / "no_bundle", free_ports), log=lambda _line: None)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
