"""``Predictor``: a bundle loaded for inference — text + image in, typed Result out.

The pipeline is four stages with typed outputs, each usable on its own (``profile`` times them):
tokenize (TextStage -> TokenBatch) -> preprocess (ImageStage -> ImageBatch) -> infer (Runner ->
dict of arrays) -> decode (-> list[Result]). Only the runner call is serialised by a lock: the
backends' bindings/contexts are not re-entrant, while tokenizing and resizing can overlap across
threads.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..bundle import Artifact, Manifest
from ..contract import ATTENTION_MASK, BATCH_AXIS, INPUT_IDS, PIXEL_VALUES
from ..errors import ClipGuardError
from ..image_io import DEFAULT_MAX_PIXELS, RgbPixels, load_pixels
from .backends import create_runner
from .backends.base import Runner
from .compile_cache import CompileCache
from .decode import DEFAULT_MIN_CONFIDENCE, DEFAULT_NMS_IOU, decode_outputs
from .errors import ImageError, TextError
from .image_stage import ImageBatch, ImageStage
from .opened_bundle import OpenedBundle, open_bundle
from .results import Result
from .selection import choose, slow_path_advice
from .stream import StreamItem, predict_stream
from .text_features import FEATURE_CACHE_BYTES, FeatureCache
from .text_stage import TEXT_CACHE_BYTES, TextStage, TokenBatch, coerce_text


@dataclass(frozen=True)
class PredictorConfig:
    """How to load a bundle. See ``selection`` for how backend/device/precision None|"auto" resolve."""

    backend: str = "auto"  # auto | onnxruntime | openvino | tensorrt
    device: str = "auto"  # auto | cpu | cuda
    precision: str | None = None  # fp32 | fp16 | int8 | None (best for the backend)
    artifact: str | None = None  # explicit artifact file name (profile uses this); overrides precision
    threads: int | None = None  # CPU intra-op threads; None: all CPUs this process may use
    device_index: int = 0
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # detections below are dropped
    nms_iou: float = DEFAULT_NMS_IOU  # per-class NMS IoU threshold; 1.0 turns NMS off
    max_image_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard
    text_cache_size: int = 256  # per-text LRU of token ids (entries); 0 disables it
    text_cache_bytes: int = TEXT_CACHE_BYTES  # ... and the memory it may hold
    # Each text encoded once (runtime.text_features): a bundle whose artifact comes in two parts runs them in turn
    # and keeps each text's features, in at most this many bytes; 0 runs the whole graph on every call.
    text_feature_cache_bytes: int = FEATURE_CACHE_BYTES
    fast_decode: bool = True  # large JPEGs decoded at reduced scale (DCT scaling), never below the input size
    verify_key: str | Path | None = None  # public key PEM: the bundle's signature must verify before any read
    # Keep compiled models across processes (OpenVINO; see runtime.compile_cache): True uses the package cache
    # (unless EDGE_CLIPGUARD_NO_COMPILE_CACHE is set), a path uses that folder, False compiles at every start.
    compile_cache: bool | str | Path = True

    def __post_init__(self) -> None:
        if self.text_feature_cache_bytes < 0:
            raise ClipGuardError("text_feature_cache_bytes must be 0 (off) or more, got "
                                 f"{self.text_feature_cache_bytes}")
        for name in ("min_confidence", "nms_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ClipGuardError(f"{name} must be between 0 and 1, got {value}")


def _text_stage(tokenizer_bytes: bytes, where: Path, manifest: Manifest, config: PredictorConfig) -> TextStage:
    """The bundle's tokenizer, parsed, behind the text stage (TextError naming the file when it is not one). Made
    before the backend, so a bad tokenizer fails the load before any model is compiled."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON; also UnicodeDecodeError
        raise TextError(f"{where}: not a readable tokenizer "
                        f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    pre = manifest.preprocess
    return TextStage(tokenizer, pre.max_text_length, config.text_cache_size, config.text_cache_bytes,
                     pre.text_lengths)


def _deactivate(runner: Runner, lock: threading.Lock) -> None:
    with lock:
        runner.deactivate()


class Predictor:
    """Thread-safe predictor. Build with ``Predictor.load(bundle_dir, ...)``; close() frees the backend."""

    def __init__(self, bundle_dir: Path, manifest: Manifest, artifact: Artifact, backend: str, device: str,
                 runner: Runner, text_stage: TextStage, config: PredictorConfig, advice: str | None = None):
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.artifact = artifact
        self.backend = backend
        self.device = device
        self.runner = runner
        self.text_stage = text_stage
        self.image_stage = ImageStage(manifest.preprocess, normalize=not runner.takes_uint8_pixels)
        self.config = config
        self.advice = advice  # a one-line hint when the chosen path is known to be slow (see selection)
        self._lock = threading.Lock()
        # Native and device memory go back when the Predictor is garbage-collected even if close() was never
        # called (the finalizer holds the runner, never the Predictor, so it does not keep it alive).
        self._finalizer = weakref.finalize(self, _deactivate, runner, self._lock)

    @classmethod
    def load(cls, bundle_dir: str | Path, backend: str = "auto", device: str = "auto", precision: str | None = None,
             threads: int | None = None, **options) -> Predictor:
        """Read and check the manifest (schema version), verify sha256 of tokenizer + artifact, start the backend.

        Extra keyword options are PredictorConfig fields (min_confidence, artifact, max_image_pixels, ...);
        ``verify_key=PUBLIC_KEY_PEM`` checks the bundle's signature (``edge-clipguard sign``) before reading it.
        Raises BundleError / IntegrityError / SignatureError / BackendError with a one-line message.
        """
        config = replace(PredictorConfig(), backend=backend, device=device, precision=precision, threads=threads,
                         **options)
        return cls.from_config(bundle_dir, config)

    @classmethod
    def from_config(cls, bundle_dir: str | Path, config: PredictorConfig) -> Predictor:
        bundle = open_bundle(bundle_dir, config.verify_key)  # SignatureError: nothing but bundle.sig was read
        return cls.from_opened(bundle, config)

    @classmethod
    def from_opened(cls, bundle: OpenedBundle, config: PredictorConfig) -> Predictor:
        """A Predictor of an opened bundle (export scores its artifacts this way, with the manifest it is about to
        write, so the accuracy column runs the code that ships)."""
        manifest = bundle.manifest
        choice = choose(manifest, config.backend, config.device, config.precision, config.artifact)
        tokenizer_file = manifest.preprocess.tokenizer_file
        text_stage = _text_stage(bundle.read(tokenizer_file), bundle.directory / tokenizer_file, manifest, config)
        cache = CompileCache.from_setting(config.compile_cache)
        features = FeatureCache(config.text_feature_cache_bytes) if config.text_feature_cache_bytes else None
        runner, artifact = create_runner(bundle, choice, config.threads, config.device_index, cache, features)
        return cls(bundle.directory, manifest, artifact, choice.backend, choice.device, runner, text_stage, config,
                   slow_path_advice(choice))

    # ---- stages -------------------------------------------------------------------------------
    def tokenize(self, texts: list[object]) -> TokenBatch:
        return self.text_stage(list(texts))

    def tokenize_one(self, text: object, index: int = 0) -> TokenBatch:
        """One text as a one-row batch; errors name it as text #index."""
        return self.text_stage([coerce_text(text, index)])

    def preprocess(self, images: list[object]) -> ImageBatch:
        return self.image_stage([self._load(img, i) for i, img in enumerate(images)])

    def graph_pixels(self, images: list[object]) -> ImageBatch:
        """The graph's own ``pixel_values`` (float32 N x 3 x S x S, normalised) whatever this runner takes, for
        another engine fed from this pipeline (profile's PyTorch rows)."""
        stage = self.image_stage if self.image_stage.normalize else ImageStage(self.manifest.preprocess)
        return stage([self._load(img, i) for i, img in enumerate(images)])

    def preprocess_one(self, image: object, index: int = 0) -> ImageBatch:
        """One image as a one-row batch; errors name it as image #index."""
        return self.image_stage([self._load(image, index)])

    def _load(self, image: object, index: int) -> RgbPixels:
        pre = self.manifest.preprocess
        return load_pixels(image, index, self.config.max_image_pixels, pre.letterbox_fill,
                           pre.image_size if self.config.fast_decode else None)

    def infer(self, tokens: TokenBatch, pixels: ImageBatch) -> dict[str, np.ndarray]:
        feed = {INPUT_IDS: tokens.input_ids, ATTENTION_MASK: tokens.attention_mask, PIXEL_VALUES: pixels.pixel_values}
        max_batch = getattr(self.runner, "max_batch", None)
        batch = len(tokens.truncated)
        if not max_batch or batch <= max_batch:
            with self._lock:
                return self.runner.infer(feed)
        parts = []
        for start in range(0, batch, max_batch):  # engines have a maximum batch: run in chunks
            with self._lock:
                parts.append(self.runner.infer({k: v[start:start + max_batch] for k, v in feed.items()}))
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def decode(self, outputs: dict[str, np.ndarray], tokens: TokenBatch, pixels: ImageBatch) -> list[Result]:
        return decode_outputs(outputs, pixels.letterboxes, tokens.truncated, self.manifest.class_names,
                              self.manifest.score_range, self.config.min_confidence, self.config.nms_iou)

    def prepare(self, batch_sizes: Iterable[int] = (1,)) -> None:
        """Compile (or import from the compile cache) what inference at these batch sizes, at every padded text
        length, needs now rather than at the first request (backends that compile per shape, OpenVINO, do it
        lazily)."""
        prepare = getattr(self.runner, "prepare", None)
        if prepare is None:
            return
        text_axis = {d for spec in self.runner.inputs for d in spec.shape if isinstance(d, str)} - {BATCH_AXIS}
        with self._lock:
            for batch in batch_sizes:
                for length in self.text_stage.lengths:
                    prepare({BATCH_AXIS: batch, **{axis: length for axis in text_axis}})

    # ---- public API ---------------------------------------------------------------------------
    def predict_batch(self, texts: list[object], images: list[object]) -> list[Result]:
        """One Result per (text, image) pair. Images: paths, PIL images or HxWx3 uint8 arrays."""
        texts, images = list(texts), list(images)
        if len(texts) != len(images):
            raise ImageError(f"got {len(texts)} texts but {len(images)} images; pass one image per text")
        tokens = self.tokenize(texts)
        pixels = self.preprocess(images)
        return self.decode(self.infer(tokens, pixels), tokens, pixels)

    def predict(self, text: object, image: object) -> Result:
        return self.predict_batch([text], [image])[0]

    def predict_stream(self, pairs: Iterable[tuple[object, object]], batch_size: int = 8, workers: int = 2,
                       prefetch: int = 2) -> Iterator[StreamItem]:
        """(text, image) pairs -> StreamItems in order, batched, with decode/preprocess of the next batches
        overlapping inference of the current one; a bad item is an item with ``error`` set, not an
        exception. See ``runtime.stream``."""
        return predict_stream(self, pairs, batch_size, workers, prefetch)

    def describe(self) -> str:
        extra = getattr(self.runner, "cuda_graph_note", "") or getattr(self.runner, "precision_note", "")
        return (f"{self.artifact.file} ({self.artifact.precision}, {self.backend} {self.device})"
                + (f"; {extra}" if extra else ""))

    def close(self) -> None:
        self._finalizer()  # runs _deactivate once; later calls do nothing

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
