"""Runtime fixtures: one predictor on the tiny fp32 bundle, a PyTorch reference, small non-square images."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    from edge_clipguard.runtime import Predictor

    with Predictor.load(tiny_bundle, backend="onnxruntime", device="cpu", threads=1, min_confidence=0.0,
                        nms_iou=1.0) as pred:  # every top-K detection, to compare with PyTorch
        yield pred


@pytest.fixture(scope="session")
def torch_reference(tiny_checkpoint):
    """f(texts, images) -> (outputs dict, letterboxes) from the PyTorch model, fed by the package's own
    (training) tokenizer and preprocess functions rather than the runtime's stages."""
    import torch

    from edge_clipguard.contract import OUTPUT_NAMES
    from edge_clipguard.model.clipguard import DecodedClipGuard
    from edge_clipguard.preprocess import preprocess_image
    from edge_clipguard.text.tokenizer import encode_texts
    from edge_clipguard.train.checkpoint import load_checkpoint, load_tokenizer_from_checkpoint, restore_model

    payload = load_checkpoint(tiny_checkpoint)
    model, cfg = restore_model(payload)
    wrapper = DecodedClipGuard(model).eval()
    tokenizer = load_tokenizer_from_checkpoint(payload)

    def run(texts, images):
        enc = encode_texts(tokenizer, texts)
        prepared = [preprocess_image(img, cfg.image_size) for img in images]
        pixels = np.stack([p[0] for p in prepared])
        with torch.no_grad():
            outs = wrapper(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask),
                           torch.from_numpy(pixels))
        return {n: o.numpy() for n, o in zip(OUTPUT_NAMES, outs)}, [p[1] for p in prepared]

    return run


@pytest.fixture(scope="session")
def images():
    """Three non-square RGB images (PIL), so the letterbox padding matters."""
    from PIL import Image

    rng = np.random.default_rng(7)
    shapes = [(48, 80), (90, 40), (33, 57)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in shapes]



@pytest.fixture(scope="session")
def free_ports():
    """f(n) -> n TCP ports free on 127.0.0.1 right now (for servers the tests start)."""
    import socket

    def pick(n: int) -> list[int]:
        socks = [socket.socket() for _ in range(n)]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            return [s.getsockname()[1] for s in socks]
        finally:
            for s in socks:
                s.close()

    return pick
