"""The predict/profile subcommands through an argparse parser built here (as edge_clipguard.cli wires them)."""

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from edge_clipguard.errors import ClipGuardError
from edge_clipguard.runtime import Predictor
from edge_clipguard.runtime.cli import register


def run_cli(argv: list[str]) -> int:
    """What edge_clipguard.cli.main does: dispatch to the handler; user errors -> one line, exit 2."""
    parser = argparse.ArgumentParser(prog="edge-clipguard")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except ClipGuardError as exc:
        print(f"edge-clipguard: error: {exc}")
        return 2
    return 0


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (45, 100, 3), dtype=np.uint8)).save(path)
    return path


def test_predict_prints_score_and_detection_table(tiny_bundle, image_path, capsys):
    code = run_cli(["predict", str(tiny_bundle), "--text", "About the stars: nice", "--image", str(image_path),
                    "--backend", "onnxruntime", "--device", "cpu", "--min-confidence", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "score:" in out and "model.fp32.onnx (fp32, onnxruntime cpu)" in out
    assert "detections: 8 (image 100x45" in out


def test_predict_json_equals_the_library_result(tiny_bundle, image_path, capsys):
    code = run_cli(["predict", str(tiny_bundle), "--text", "About the stars: nice", "--image", str(image_path),
                    "--json", "--device", "cpu", "--min-confidence", "0"])
    printed = json.loads(capsys.readouterr().out)
    with Predictor.load(tiny_bundle, device="cpu", min_confidence=0.0) as pred:
        expected = pred.predict("About the stars: nice", image_path).to_dict()
    assert code == 0 and printed == json.loads(json.dumps(expected))


def test_predict_decodes_a_large_jpeg_as_the_library_does(tiny_bundle, tmp_path, capsys):
    """A photo far larger than the model's input: the CLI takes the Predictor's reduced-scale decode, so it gives
    the library's result, not that of a full-size decode."""
    from edge_clipguard.image_io import load_image

    photo = tmp_path / "photo.jpg"
    rng = np.random.default_rng(9)
    noise = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).resize((1600, 1200), Image.BICUBIC).save(photo, quality=90)
    code = run_cli(["predict", str(tiny_bundle), "--text", "a red star", "--image", str(photo), "--json",
                    "--backend", "onnxruntime", "--device", "cpu", "--min-confidence", "0"])
    printed = json.loads(capsys.readouterr().out)
    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", min_confidence=0.0) as pred:
        from_path = json.loads(json.dumps(pred.predict("a red star", photo).to_dict()))
        full_decode = pred.predict("a red star", np.asarray(load_image(photo))).score
    assert code == 0 and printed == from_path
    assert printed["score"] != full_decode  # the two decodes differ, so the test can tell them apart


def test_predict_warns_when_the_text_was_truncated(tiny_bundle, image_path, capsys):
    run_cli(["predict", str(tiny_bundle), "--text", "great " * 50, "--image", str(image_path), "--device", "cpu"])
    assert "edge-clipguard: warning: text is longer than the model's 16 tokens" in capsys.readouterr().err


def test_predict_draw_writes_a_png_of_the_original_size(tiny_bundle, image_path, tmp_path):
    out = tmp_path / "drawn.png"
    code = run_cli(["predict", str(tiny_bundle), "--text", "a star", "--image", str(image_path), "--device", "cpu",
                    "--min-confidence", "0", "--draw", str(out)])
    drawn = Image.open(out)
    assert code == 0 and drawn.format == "PNG" and drawn.size == (100, 45)
    assert not np.array_equal(np.asarray(drawn.convert("RGB")), np.asarray(Image.open(image_path)))
    assert [p.name for p in tmp_path.iterdir()] == ["drawn.png"]  # no temp file left behind


def test_predict_bad_image_exits_2_with_one_line(tiny_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    code = run_cli(["predict", str(tiny_bundle), "--text", "a star", "--image", str(bad), "--device", "cpu"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 2 and len(out) == 1 and out[0].startswith(f"edge-clipguard: error: {bad}")


def test_predict_empty_text_exits_2(tiny_bundle, image_path, capsys):
    code = run_cli(["predict", str(tiny_bundle), "--text", "", "--image", str(image_path), "--device", "cpu"])
    assert code == 2 and "is empty" in capsys.readouterr().out


def test_profile_writes_json_and_plot(tiny_bundle, tmp_path, capsys):
    out_json, out_png = tmp_path / "p.json", tmp_path / "p.png"
    code = run_cli(["profile", str(tiny_bundle), "--backend", "onnxruntime", "--device", "cpu", "--threads", "1",
                    "--batch", "1,2", "--iters", "3", "--warmup", "1", "--json", str(out_json), "--plot", str(out_png)])
    printed = capsys.readouterr().out
    data = json.loads(out_json.read_text())
    assert code == 0 and "model.fp32.onnx" in printed
    assert [(r["name"], r["batch"]) for r in data["rows"]] == [("model.fp32.onnx", 1), ("model.fp32.onnx", 2),
                                                               ("model.fp32.onnx (stream)", 2)]
    assert all(r["rss_mb"] > 0 and r["peak_rss_mb"] >= r["rss_mb"] for r in data["rows"])
    assert Image.open(out_png).format == "PNG"


def test_profile_bad_batch_list_exits_2(tiny_bundle, capsys):
    code = run_cli(["profile", str(tiny_bundle), "--batch", "1,x"])
    assert code == 2 and "--batch" in capsys.readouterr().out
