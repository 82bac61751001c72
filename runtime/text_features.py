"""Each text encoded once: an artifact's two parts run in turn, with the text part's output kept per text.

A bundle of schema 3 ships each ONNX artifact also cut in two (``export.split_graph``): a text graph
(input_ids, attention_mask -> text_features) and a fusion graph (text_features, attention_mask, pixel_values ->
score, boxes, ...). ``SplitRunner`` is a Runner over the two that takes the whole graph's feed: for each row it
looks the row's token ids up in a ``BoundedLru`` of features, runs the text graph once for the rows it has not
seen (one call for all of them, duplicates once), and feeds the fusion graph the features padded to the batch's
text length. A camera loop that asks one question of every frame thus runs the text encoder once.

Why the cached features are exact: the text encoder masks its padding, so a row's features at its real tokens
do not depend on how far the batch was padded; padding positions get zeros, which the fusion masks too. The
entry is keyed by the row's real token ids, so the same text in another batch, at another padded length,
finds it. Bounded in bytes (4 bytes x tokens x feature width a row; 256 x 64 tokens is 16 MB for base) and in
entries; the Predictor serialises ``infer``, and the cache locks its own bookkeeping.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..contract import ATTENTION_MASK, BATCH_AXIS, INPUT_IDS, PIXEL_VALUES, TEXT_AXIS, TEXT_FEATURES
from .backends.base import Runner
from .text_stage import BoundedLru, CacheInfo

FEATURE_CACHE_BYTES = 32 * 1024 * 1024  # default bound of the text-feature cache's memory
FEATURE_CACHE_ENTRIES = 1024


def _feature_bytes(key: bytes, value: np.ndarray) -> int:
    return len(key) + value.nbytes + 200  # the key, the array and the entry's bookkeeping


class FeatureCache:
    """Text features per row of token ids, least recently used evicted first."""

    def __init__(self, max_bytes: int = FEATURE_CACHE_BYTES, max_entries: int = FEATURE_CACHE_ENTRIES):
        self._lru = BoundedLru(None, _feature_bytes, max_entries, max_bytes)

    def get(self, key: bytes) -> np.ndarray | None:
        return self._lru.get(key)

    def put(self, key: bytes, features: np.ndarray) -> None:
        features.setflags(write=False)  # handed to many batches: nobody may change it
        self._lru.put(key, features)

    def info(self) -> CacheInfo:
        return self._lru.info()


def row_keys(input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """(key of each row: its real token ids as bytes, each row's number of real tokens). The runtime pads on the
    right (``text_stage.pad_batch``), so a row's real tokens are its first ``mask.sum()``."""
    counts = attention_mask.sum(axis=1).astype(np.int64)
    return [input_ids[i, :n].astype(np.int64).tobytes() for i, n in enumerate(counts)], counts


class SplitRunner(Runner):
    """The whole graph's interface (input_ids, attention_mask, pixel_values -> outputs) over an artifact's two
    parts with a FeatureCache between them. Each part is an ordinary runner of its backend."""

    name = "split"

    def __init__(self, text: Runner, fusion: Runner, cache: FeatureCache):
        pixels = next(spec for spec in fusion.inputs if spec.name == PIXEL_VALUES)
        super().__init__((*text.inputs, pixels), fusion.outputs)
        self.text, self.fusion, self.cache = text, fusion, cache
        self.takes_uint8_pixels = fusion.takes_uint8_pixels
        self.text_calls = 0  # text-graph runs (one per batch with any uncached row)
        self._prepared: set = set()  # axis sizes both parts were compiled for together

    @property
    def max_batch(self) -> int | None:
        """The largest batch both parts take (TensorRT engines have one; None: any)."""
        limits = [b for b in (getattr(self.text, "max_batch", None), getattr(self.fusion, "max_batch", None)) if b]
        return min(limits) if limits else None

    @property
    def compile_log(self) -> list:
        """The parts' compile logs (OpenVINO), each variant named after its part: "text/batch1-text_length8"."""
        return [(f"{part}/{variant}", *rest) for part, runner in (("text", self.text), ("fusion", self.fusion))
                for variant, *rest in getattr(runner, "compile_log", [])]

    @property
    def precision_note(self) -> str:
        note = getattr(self.fusion, "precision_note", "") or getattr(self.fusion, "cuda_graph_note", "")
        return ((note + "; ") if note else "") + "text encoded once per text (parts + feature cache)"

    def activate_impl(self) -> None:
        self.text.activate()
        self.fusion.activate()

    def deactivate_impl(self) -> None:
        self.text.deactivate()
        self.fusion.deactivate()

    def features(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """float [batch, text_length, D]: each row's cached features at its real tokens, zeros after; rows not in
        the cache are encoded first, in one text-graph call at the batch's padded length."""
        keys, counts = row_keys(input_ids, attention_mask)
        found = {key: self.cache.get(key) for key in dict.fromkeys(keys)}
        missing = [key for key, value in found.items() if value is None]
        if missing:
            rows = [keys.index(key) for key in missing]
            if len(rows) == len(keys):  # both parts run at these sizes: compile them side by side
                self.prepare({BATCH_AXIS: len(keys), TEXT_AXIS: input_ids.shape[1]})
            encoded = self.text.infer({INPUT_IDS: input_ids[rows], ATTENTION_MASK: attention_mask[rows]})
            self.text_calls += 1
            for key, row, values in zip(missing, rows, encoded[TEXT_FEATURES]):
                found[key] = values[:counts[row]].copy()  # its own memory: the cache counts exactly what it holds
                self.cache.put(key, found[key])
        dim = next(iter(found.values())).shape[-1]
        dtype = next(iter(found.values())).dtype
        out = np.zeros((len(keys), input_ids.shape[1], dim), dtype=dtype)
        for i, key in enumerate(keys):
            out[i, :counts[i]] = found[key]
        return out

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = self.features(feed[INPUT_IDS], feed[ATTENTION_MASK])
        return self.fusion.infer({TEXT_FEATURES: features, ATTENTION_MASK: feed[ATTENTION_MASK],
                                  PIXEL_VALUES: feed[PIXEL_VALUES]})

    def prepare(self, dims: dict[str, int]) -> None:
        """Compile (or import from the compile cache) both parts' variants for these axis sizes now, the text
        part on a second thread while this one does the fusion part: compiling and importing are mostly one
        thread each, so a first prediction waits for the slower part, not for both (backends that compile per
        shape: OpenVINO; the others have nothing to prepare)."""
        key = tuple(sorted(dims.items()))
        prepares = [getattr(part, "prepare", None) for part in (self.text, self.fusion)]
        if key in self._prepared or None in prepares:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipguard-prepare") as pool:
            text = pool.submit(prepares[0], dims)
            prepares[1](dims)
            text.result()
        self._prepared.add(key)

    def profile_layers(self, feed: dict[str, np.ndarray], iters: int = 20) -> list:
        """Both parts' per-node times (OpenVINO) for ``feed``, the text part's and then the fusion part's."""
        text_feed = {INPUT_IDS: feed[INPUT_IDS], ATTENTION_MASK: feed[ATTENTION_MASK]}
        fusion_feed = {TEXT_FEATURES: self.features(feed[INPUT_IDS], feed[ATTENTION_MASK]),
                       ATTENTION_MASK: feed[ATTENTION_MASK], PIXEL_VALUES: feed[PIXEL_VALUES]}
        return [*self.text.profile_layers(text_feed, iters), *self.fusion.profile_layers(fusion_feed, iters)]
