"""``edge-clipguard serve`` end to end: a real Triton (PyTriton) on free loopback ports, in a subprocess.

Concurrent requests from several threads all succeed and equal the in-process Predictor's results; a corrupt
image, an image path and a wrong shape get error responses naming the problem and the server stays ready;
SIGTERM during an in-flight request lets it finish and the process exits 0. Skipped without the [serve] extra.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytriton", reason="needs the [serve] extra (nvidia-pytriton)")
httpclient = pytest.importorskip("tritonclient.http", reason="needs the [serve] extra (tritonclient[http])")
from tritonclient.utils import InferenceServerException  # noqa: E402

from edge_clipguard.runtime import serve as S  # noqa: E402

START_TIMEOUT_S = 90
TEXTS = ["About the stars: lovely.", "The red circle is broken!", "About the crosses: meh.", "About the rings: wow"]


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def inputs(texts: list[bytes], images: list[bytes]) -> list:
    out = []
    for name, values in ((S.TEXT, texts), (S.IMAGE, images)):
        tensor = httpclient.InferInput(name, [len(values), 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[v] for v in values], dtype=np.object_))
        out.append(tensor)
    return out


def start_serve(bundle, ports: list[int], log) -> subprocess.Popen:
    """``edge-clipguard serve BUNDLE`` in a subprocess on the given (http, grpc, metrics) ports, output to ``log``."""
    http, grpc, metrics = ports
    cmd = [sys.executable, "-m", "edge_clipguard.cli", "serve", str(bundle), "--backend", "onnxruntime",
           "--device", "cpu", "--threads", "1", "--min-confidence", "0", "--nms-iou", "1",
           "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
           "--max-batch", "8", "--max-queue-delay-us", "20000", "--drain-timeout", "5"]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory, free_ports):
    http, grpc, metrics = free_ports(3)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc = start_serve(tiny_bundle, [http, grpc, metrics], log)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{http}", concurrency=8)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode} before it was ready:\n{log.read_text()[-3000:]}")
        try:
            if client.is_server_ready() and client.is_model_ready(S.MODEL_NAME):
                break
        except Exception:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"serve not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)
    yield {"proc": proc, "client": client, "http": http, "metrics": metrics, "log": log}
    client.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def local(tiny_bundle):
    from edge_clipguard.runtime import Predictor

    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1, min_confidence=0.0,
                        nms_iou=1.0) as predictor:
        yield predictor


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(3)
    return [encode(Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)), fmt)
            for (h, w), fmt in zip([(48, 80), (90, 40), (33, 57), (70, 70)], ["PNG", "JPEG", "PNG", "JPEG"])]


def test_health_metrics_and_class_names_in_the_model_config(server, local):
    client = server["client"]
    assert client.is_server_live() and client.is_server_ready()
    config = client.get_model_config(S.MODEL_NAME)
    assert config["max_batch_size"] == 8 and "dynamic_batching" in config
    assert json.loads(config["parameters"]["class_names"]["string_value"]) == list(local.manifest.class_names)
    assert config["parameters"]["top_k"]["string_value"] == str(local.manifest.top_k)
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server['metrics']}/metrics", timeout=10) as response:
        assert b"nv_inference_request_success" in response.read()


def test_concurrent_requests_all_succeed_and_equal_the_in_process_predictor(server, local, pictures):
    local_clients = threading.local()  # tritonclient.http (gevent) clients must not cross threads
    jobs = [([TEXTS[(t + k) % 4] for k in range(1 + t % 2)], [pictures[(t + 2 * k) % 4] for k in range(1 + t % 2)])
            for t in range(24)]  # 1- and 2-image requests

    def send(job):
        texts, images = job
        if not hasattr(local_clients, "client"):
            local_clients.client = httpclient.InferenceServerClient(f"127.0.0.1:{server['http']}")
        result = local_clients.client.infer(S.MODEL_NAME, inputs([t.encode() for t in texts], images))
        return {name: result.as_numpy(name) for name in S.OUTPUT_NAMES}

    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(send, jobs))
    for (texts, images), got in zip(jobs, answers):
        want = S.pack_results(local.predict_batch(texts, images), local.manifest.top_k)
        assert got[S.ERROR].tolist() == want[S.ERROR].tolist()
        for name in (n for n in S.OUTPUT_NAMES if n != S.ERROR):
            np.testing.assert_allclose(got[name], want[name], atol=1e-3, err_msg=name)


def test_with_16_clients_and_10_percent_bad_requests_every_good_request_succeeds(server, local, pictures):
    """Dynamic batching mixes the bad requests into batches of good ones: those are answered in their own error
    row (or, batched only with bad ones, with Triton's error) and no good request fails with them."""
    local_clients = threading.local()
    jobs = [(f"About the stars {i}".encode(), b"not an image" if i % 10 == 9 else pictures[i % 4]) for i in range(96)]

    def send(job):
        text, image = job
        if not hasattr(local_clients, "client"):
            local_clients.client = httpclient.InferenceServerClient(f"127.0.0.1:{server['http']}")
        try:
            result = local_clients.client.infer(S.MODEL_NAME, inputs([text], [image]))
        except InferenceServerException as exc:
            return "http", str(exc)
        error = result.as_numpy(S.ERROR)[0, 0].decode()
        return ("row", error) if error else ("ok", float(result.as_numpy(S.SCORE)[0, 0]))

    with ThreadPoolExecutor(16) as threads:
        answers = list(threads.map(send, jobs))
    for (text, image), (kind, value) in zip(jobs, answers):
        if image == b"not an image":
            assert kind in ("http", "row") and "image #0: not an image" in value
        else:
            assert kind == "ok", value
            assert value == pytest.approx(local.predict(text, image).score, abs=1e-3)


def test_bad_requests_get_errors_naming_the_problem_and_the_server_stays_ready(server, pictures, tmp_path):
    client = server["client"]
    secret = tmp_path / "secret.png"
    secret.write_bytes(pictures[0])
    cases = [([b"About the stars"], [b"this is not an image"], "image #0: not an image"),
             ([b"About the stars"], [pictures[1][:200]], "image #0: corrupt image data"),
             ([b"About the stars"], [str(secret).encode()], "image #0: not an image"),  # a path is just bytes
             ([b"   "], [pictures[0]], "text #0: is empty"),
             ([b"\xff\xfe"], [pictures[0]], "text #0: bytes are not valid UTF-8"),
             ([b"About the stars"], [b""], "image #0: image bytes are empty")]
    for texts, images, expected in cases:
        with pytest.raises(InferenceServerException, match=expected):
            client.infer(S.MODEL_NAME, inputs(texts, images))
        assert client.is_server_ready()
    wrong = httpclient.InferInput(S.TEXT, [1, 2], "BYTES")
    wrong.set_data_from_numpy(np.array([[b"a", b"b"]], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="text"):
        client.infer(S.MODEL_NAME, [wrong, inputs([b"x"], [pictures[0]])[1]])
    as_floats = httpclient.InferInput(S.IMAGE, [1, 1], "FP32")
    as_floats.set_data_from_numpy(np.zeros((1, 1), np.float32))
    with pytest.raises(InferenceServerException, match="image"):
        client.infer(S.MODEL_NAME, [inputs([b"x"], [pictures[0]])[0], as_floats])
    assert client.is_server_ready()
    result = client.infer(S.MODEL_NAME, inputs([b"About the stars: still fine"], [pictures[0]]))
    assert result.as_numpy(S.SCORE).shape == (1, 1)


def test_health_ready_answers_200_only_once_the_model_serves(tiny_bundle, free_ports, pictures, tmp_path):
    """An orchestrator's probe polls /v2/health/ready from the moment the process starts; the first 200 it sees
    must mean the model answers, so an inference sent right then succeeds."""
    import urllib.error
    import urllib.request

    ports = free_ports(3)
    log = tmp_path / "serve.log"
    proc = start_serve(tiny_bundle, ports, log)

    def status(path: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}{path}", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None  # not listening yet

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while status("/v2/health/ready") != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
            time.sleep(0.01)
        assert status(f"/v2/models/{S.MODEL_NAME}/ready") == 200
        client = httpclient.InferenceServerClient(f"127.0.0.1:{ports[0]}")
        result = client.infer(S.MODEL_NAME, inputs([b"About the stars: first"], [pictures[0]]))
        client.close()
        assert result.as_numpy(S.SCORE).shape == (1, 1) and result.as_numpy(S.ERROR)[0, 0] == b""
    finally:
        proc.terminate()
        proc.wait(30)


def test_sigterm_drains_the_in_flight_request_and_exits_0(server, local):
    client, proc = server["client"], server["proc"]
    # Eight large PNGs take ~0.6 s to decode on 2 cores, so the request is in flight when SIGTERM comes 0.1 s
    # after it was sent (loopback: it has arrived by then, and Triton drains what it has accepted).
    ramp = np.tile(np.linspace(0, 255, 2400, dtype=np.uint8), (2400, 1))
    big = encode(Image.fromarray(np.dstack([ramp, ramp.T, ramp[::-1]])))
    pending = client.async_infer(S.MODEL_NAME, inputs([b"About the stars: big"] * 8, [big] * 8))
    time.sleep(0.1)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    result = pending.get_result(timeout=60)
    assert result.as_numpy(S.SCORE).shape == (8, 1)
    want = S.pack_results(local.predict_batch(["About the stars: big"], [big]), local.manifest.top_k)
    np.testing.assert_allclose(result.as_numpy(S.SCORE)[:1], want[S.SCORE], atol=1e-3)
    assert proc.wait(timeout=30) == 0, server["log"].read_text()[-3000:]
    assert time.monotonic() - started < 15  # drain timeout 5 s + Triton's unload
    assert "stopped" in server["log"].read_text()
